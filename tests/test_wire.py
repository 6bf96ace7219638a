import fastavro
import numpy as np
import pytest

from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.schemas.registry import batch_schema, event_schema, local_schema_ids
from inferwatch.schemas.wire import EventCodec, WireFormatError


@pytest.fixture(scope="module")
def codec():
    return EventCodec(local_schema_ids())


@pytest.fixture(scope="module")
def events():
    return TrafficModel(seed=1).events(np.arange(50, dtype=np.int64) + 1_700_000_000_000)


def test_batch_and_single_round_trip(codec, events):
    assert codec.decode(codec.encode_batch(events)) == events
    assert codec.decode(codec.encode_event(events[0])) == [events[0]]


def test_confluent_framing(codec, events):
    message = codec.encode_batch(events)
    assert message[0] == 0
    assert int.from_bytes(message[1:5], "big") == local_schema_ids().batch


def test_registered_schemas_are_self_contained_and_parse():
    # What a Schema Registry or ClickHouse's AvroConfluent reader gets must parse on its own.
    fastavro.parse_schema(batch_schema(), named_schemas={})
    fastavro.parse_schema(event_schema(), named_schemas={})
    assert event_schema()["namespace"] == "inferwatch.v1"


def test_every_field_is_documented():
    def fields(record):
        for field in record["fields"]:
            yield field
            for branch in field["type"] if isinstance(field["type"], list) else [field["type"]]:
                if isinstance(branch, dict) and branch.get("type") == "record":
                    yield from fields(branch)

    undocumented = [f["name"] for f in fields(event_schema()) if not f.get("doc")]
    assert undocumented == []


@pytest.mark.parametrize(
    "message, reason",
    [
        (None, "not Confluent-framed"),
        (b"\x00\x00", "not Confluent-framed"),
        (b'{"json": true}', "not Confluent-framed: magic byte"),
        (b"\x00\x00\x00\x00\x63payload", "unknown schema id 99"),
    ],
)
def test_malformed_messages_name_the_reason(codec, message, reason):
    with pytest.raises(WireFormatError, match=reason):
        codec.decode(message)


def test_truncated_and_trailing_bytes_are_rejected(codec, events):
    message = codec.encode_batch(events)
    with pytest.raises(WireFormatError, match="undecodable Avro body"):
        codec.decode(message[: len(message) // 2])
    with pytest.raises(WireFormatError, match="trailing bytes"):
        codec.decode(message + b"\x00")
