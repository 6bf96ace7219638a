"""Confluent wire framing + Avro bodies for inference events.

A message is ``0x00 | schema id (4 bytes, big endian) | Avro binary body``: the framing Schema
Registry clients, kcat and ClickHouse's AvroConfluent format read. The schema id tells a batch
message (many events) from a single-event message sent by a third-party producer.
The event fields other modules compute on by their declared values (`STATUSES`,
`RESOURCE_FIELDS`) are read from the .avsc here, not restated.
"""

from __future__ import annotations

import io
import struct

from fastavro import schemaless_reader, schemaless_writer

from inferwatch.schemas.registry import (
    BATCH_SCHEMA_NAME,
    DRIFT_SCHEMA_NAME,
    EVENT_SCHEMA_NAME,
    FEEDBACK_SCHEMA_NAME,
    SchemaIds,
    event_schema,
    parsed_wire_schema,
)

MAGIC_BYTE = 0
# Event fields the Kafka message key is made of ("<service>|<model>"): every event of one
# (service, model) is in one partition, in order. Windows rely on it (processors/windows/keys.py).
PARTITION_KEY_FIELDS = ("service", "model")
_HEADER = struct.Struct(">BI")


def _event_field_type(name: str) -> dict:
    """The type of an InferenceEvent field as the .avsc declares it (of a nullable one, the non-null branch)."""
    (field,) = [f for f in event_schema()["fields"] if f["name"] == name]
    branches = field["type"] if isinstance(field["type"], list) else [field["type"]]
    return next(b for b in branches if b != "null")


# The `status` enum's symbols, in the .avsc's order (an enum's Avro encoding is the symbol's index).
STATUSES: tuple[str, ...] = tuple(_event_field_type("status")["symbols"])
# The fields of the nullable `resources` record: ClickHouse stores them as columns of their own.
RESOURCE_FIELDS: tuple[str, ...] = tuple(f["name"] for f in _event_field_type("resources")["fields"])


class WireFormatError(ValueError):
    """A message that is not a decodable inference event (batch); str() is the dead-letter reason."""


class EventCodec:
    """Encodes and decodes inference events for the given schema ids.

    Events are plain dicts with `ts` as epoch milliseconds and `event_id` as a UUID string.
    """

    def __init__(self, ids: SchemaIds):
        self.ids = ids
        self._event_schema = parsed_wire_schema(EVENT_SCHEMA_NAME)
        self._batch_schema = parsed_wire_schema(BATCH_SCHEMA_NAME)
        self._feedback_schema = parsed_wire_schema(FEEDBACK_SCHEMA_NAME)
        self._drift_schema = parsed_wire_schema(DRIFT_SCHEMA_NAME)

    def _encode(self, schema_id: int, schema, record: dict) -> bytes:
        out = io.BytesIO()
        out.write(_HEADER.pack(MAGIC_BYTE, schema_id))
        schemaless_writer(out, schema, record)
        return out.getvalue()

    def encode_event(self, event: dict) -> bytes:
        return self._encode(self.ids.event, self._event_schema, event)

    def encode_batch(self, events: list[dict]) -> bytes:
        return self._encode(self.ids.batch, self._batch_schema, {"events": events})

    def encode_feedback(self, feedback: dict) -> bytes:
        return self._encode(self.ids.feedback, self._feedback_schema, feedback)

    def encode_drift(self, detection: dict) -> bytes:
        return self._encode(self.ids.drift, self._drift_schema, detection)

    def decode_drift(self, message: bytes) -> dict:
        schema_id, body = unframe(message)
        if schema_id != self.ids.drift:
            raise WireFormatError(f"unknown schema id {schema_id} (drift={self.ids.drift})")
        return self._read(schema_id, self._drift_schema, body)

    def decode_feedback(self, message: bytes) -> dict:
        schema_id, body = unframe(message)
        if schema_id != self.ids.feedback:
            raise WireFormatError(f"unknown schema id {schema_id} (feedback={self.ids.feedback})")
        return self._read(schema_id, self._feedback_schema, body)

    def decode(self, message: bytes | None, max_events: int | None = None) -> list[dict]:
        """The events a message carries (one for a single-event message).

        Raises WireFormatError naming what is wrong: not our framing, unknown schema id, more
        than `max_events` events (counted before any is decoded: a small compressed message can
        hold millions), or a body that does not decode (truncated, corrupt, or trailing bytes).
        """
        schema_id, body = unframe(message)
        if schema_id == self.ids.batch:
            if max_events is not None:
                check_event_count(batch_event_count(body), max_events)
            schema, is_batch = self._batch_schema, True
        elif schema_id == self.ids.event:
            schema, is_batch = self._event_schema, False
        else:
            raise WireFormatError(
                f"unknown schema id {schema_id} (known: event={self.ids.event}, batch={self.ids.batch})"
            )
        record = self._read(schema_id, schema, body)
        return record["events"] if is_batch else [record]

    @staticmethod
    def _read(schema_id: int, schema, body: memoryview) -> dict:
        stream = io.BytesIO(body)
        try:
            record = schemaless_reader(stream, schema, None)
        except Exception as exc:  # fastavro raises EOFError, ValueError, IndexError, ...
            raise WireFormatError(f"undecodable Avro body for schema id {schema_id}: {exc!r}") from exc
        if stream.tell() != len(body):
            raise WireFormatError(
                f"undecodable Avro body for schema id {schema_id}: {len(body) - stream.tell()} trailing bytes"
            )
        return record


def unframe(message: bytes | None) -> tuple[int, memoryview]:
    """(schema id, Avro body) of a Confluent-framed message; WireFormatError if it is not one.

    The body is a view into `message`, not a copy."""
    if message is None or len(message) < _HEADER.size:
        raise WireFormatError(f"not Confluent-framed: {len(message or b'')} bytes, need >= {_HEADER.size}")
    magic, schema_id = _HEADER.unpack_from(message)
    if magic != MAGIC_BYTE:
        raise WireFormatError(f"not Confluent-framed: magic byte {magic}, expected {MAGIC_BYTE}")
    return schema_id, memoryview(message)[_HEADER.size:]


def check_event_count(count: int, max_events: int) -> None:
    if count > max_events:
        raise WireFormatError(f"a batch message of {count} events: more than max_events_per_message ({max_events})")


def batch_event_count(body: memoryview) -> int:
    """The events an Avro array body announces, from its block headers only (no event decoded).

    A block with a negative count gives its byte size and is skipped; a positive count gives no
    size, so the count stops there (encoders write one such block per array)."""
    total, pos = 0, 0
    while True:
        count, pos = read_avro_long(body, pos)
        if count >= 0:
            return total + count
        size, pos = read_avro_long(body, pos)
        total, pos = total - count, pos + max(size, 0)


def read_avro_long(buf: memoryview, pos: int) -> tuple[int, int]:
    """(value, next position) of the Avro long (zig-zag varint) at `pos`."""
    n = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise WireFormatError("truncated Avro long")
        byte = buf[pos]
        pos += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return (n >> 1) ^ -(n & 1), pos


def avro_long(n: int) -> bytes:
    """Avro long: zig-zag, then base-128 varint."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
