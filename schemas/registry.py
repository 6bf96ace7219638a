"""The event schemas and their wire ids.

`inference_event.avsc` is the contract; `inference_event_batch.avsc` refers to it by name and gets
it inlined here, so the schema we register (or hand to kcat / ClickHouse's AvroConfluent) is
self-contained. Ids come from a Confluent Schema Registry when one is configured (subjects named
after the record, so both schemas can live on one topic) and from `schema_ids.json` otherwise.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import fastavro

SCHEMA_DIR = Path(__file__).parent
EVENT_SCHEMA_NAME = "inferwatch.v1.InferenceEvent"
BATCH_SCHEMA_NAME = "inferwatch.v1.InferenceEventBatch"
FEEDBACK_SCHEMA_NAME = "inferwatch.v1.FeedbackEvent"
DRIFT_SCHEMA_NAME = "inferwatch.v1.DriftEvent"


def _load(file_name: str) -> dict:
    return json.loads((SCHEMA_DIR / file_name).read_text())


@cache
def event_schema() -> dict:
    """The InferenceEvent schema as written in the .avsc (with logical types)."""
    return _load("inference_event.avsc")


@cache
def feedback_schema() -> dict:
    return _load("feedback_event.avsc")


@cache
def drift_schema() -> dict:
    return _load("drift_event.avsc")


@cache
def batch_schema() -> dict:
    """The InferenceEventBatch schema with InferenceEvent inlined."""
    schema = _load("inference_event_batch.avsc")
    for field in schema["fields"]:
        if field["name"] == "events":
            field["type"]["items"] = copy.deepcopy(event_schema())
    return schema


def _without_logical_types(node):
    """Same binary encoding, but ts stays epoch-ms and event_id a str.

    fastavro would otherwise build a datetime and a UUID object per event, which costs a third of
    the decode time and is converted straight back to numbers/strings for the columns downstream.
    """
    if isinstance(node, dict):
        if "logicalType" in node and isinstance(node.get("type"), str):
            return node["type"]
        return {k: _without_logical_types(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_without_logical_types(v) for v in node]
    return node


@cache
def parsed_wire_schema(name: str):
    """fastavro-parsed schema used on the hot path (logical types off, see above)."""
    source = {
        EVENT_SCHEMA_NAME: event_schema, BATCH_SCHEMA_NAME: batch_schema, FEEDBACK_SCHEMA_NAME: feedback_schema,
        DRIFT_SCHEMA_NAME: drift_schema,
    }[name]()
    return fastavro.parse_schema(_without_logical_types(source), named_schemas={})


@dataclass(frozen=True)
class SchemaIds:
    event: int
    batch: int
    feedback: int
    drift: int


def local_schema_ids() -> SchemaIds:
    ids = _load("schema_ids.json")
    return SchemaIds(event=ids[EVENT_SCHEMA_NAME], batch=ids[BATCH_SCHEMA_NAME], feedback=ids[FEEDBACK_SCHEMA_NAME],
                     drift=ids[DRIFT_SCHEMA_NAME])


def registry_schema_ids(registry_url: str) -> SchemaIds:
    """Register the schemas (idempotent in the registry) and return their ids."""
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

    client = SchemaRegistryClient({"url": registry_url})

    def register(subject: str, schema: dict) -> int:
        return client.register_schema(subject, Schema(json.dumps(schema), "AVRO"))

    return SchemaIds(
        event=register(EVENT_SCHEMA_NAME, event_schema()),
        batch=register(BATCH_SCHEMA_NAME, batch_schema()),
        feedback=register(FEEDBACK_SCHEMA_NAME, feedback_schema()),
        drift=register(DRIFT_SCHEMA_NAME, drift_schema()),
    )


def schema_ids(registry_url: str = "") -> SchemaIds:
    return registry_schema_ids(registry_url) if registry_url else local_schema_ids()
