"""The raw log's way in: Kafka messages -> a Null table -> a view that keeps the valid events.

The ClickHouse sink decodes no event in Python: ClickHouse parses the messages' Avro itself
(avro_container.py). To keep out of `inference_events` exactly the events the worker refuses
(schemas/validation.py), each Kafka message becomes one record of `message_schema()`: its Kafka
timestamp (the reference `ts` is checked against) followed by its body, which already *is* an Avro
array of events, so no byte of it is rewritten. The records go into INTAKE_TABLE (engine Null:
nothing stored); a materialized view unpacks each message's events (ARRAY JOIN), keeps those
the rules pass, and writes them into `inference_events`.

The view's SQL depends on the limits in the settings, so it is created at start-up, named after
a hash of its SQL. A worker started with other limits creates its view first and then drops the
others; meanwhile a message may pass both, and its rows collapse on event_id (ReplacingMergeTree).
"""

from __future__ import annotations

import hashlib

from clickhouse_connect.driver.client import Client

from inferwatch.schemas.registry import event_schema
from inferwatch.schemas.validation import EventLimits, decodable_message_sql, event_rules, valid_events_sql
from inferwatch.schemas.wire import RESOURCE_FIELDS, avro_long

INTAKE_TABLE = "inference_event_messages"
VIEW_PREFIX = "inference_events_intake_"


def message_schema() -> dict:
    """The Avro record one Kafka message becomes: (Kafka timestamp ms, the message's events)."""
    return {"type": "record", "name": "KafkaMessage", "namespace": "inferwatch.v1", "fields": [
        {"name": "kafka_ts", "type": "long"},
        {"name": "events", "type": {"type": "array", "items": event_schema()}},
    ]}


def message_record(body: memoryview, is_batch: bool, timestamp_ms: int) -> bytes:
    """A message's Avro body (after the Confluent header) as a record of `message_schema()`; a
    single-event body becomes an array of one."""
    if is_batch:
        return avro_long(timestamp_ms) + bytes(body)
    return avro_long(timestamp_ms) + avro_long(1) + bytes(body) + avro_long(0)


def ensure_intake(client: Client, limits: EventLimits) -> str:
    """Create the intake table and the view for these limits, drop views for other limits;
    returns the view's name."""
    client.command(f"CREATE TABLE IF NOT EXISTS {INTAKE_TABLE} (kafka_ts Int64, "
                   f"events Array({_clickhouse_type(event_schema())})) ENGINE = Null")
    select = _view_select(limits)
    name = VIEW_PREFIX + hashlib.sha256(select.encode()).hexdigest()[:12]
    client.command(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {name} TO inference_events AS {select}")
    others = client.query("SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, {p:String})"
                          " AND name != {n:String}", parameters={"p": VIEW_PREFIX, "n": name}).result_rows
    for (other,) in others:
        client.command(f"DROP VIEW IF EXISTS {other}")
    return name


def _view_select(limits: EventLimits) -> str:
    columns = []
    for field in event_schema()["fields"]:
        name, value = field["name"], f"tupleElement(e, '{field['name']}')"
        if name == "event_id":
            columns.append(f"toUUIDOrZero({value}) AS event_id")  # never throws, whatever the plan evaluates first
        elif name == "ts":
            columns.append(f"fromUnixTimestamp64Milli({value}, 'UTC') AS ts")
        elif name == "resources":  # flattened into columns of their own (migration 003)
            columns += [f"tupleElement({value}, '{sub}') AS {sub}" for sub in RESOURCE_FIELDS]
        else:
            columns.append(f"{value} AS {name}")
    return (f"SELECT {', '.join(columns)} FROM {INTAKE_TABLE} ARRAY JOIN events AS e "
            f"WHERE {decodable_message_sql('events')} AND {valid_events_sql(event_rules(limits), 'kafka_ts')}")


_PRIMITIVES = {"string": "String", "long": "Int64", "int": "Int32", "double": "Float64", "enum": "String"}


def _clickhouse_type(avro) -> str:
    """The ClickHouse type Avro input reads this Avro type into, keeping every value the rules
    look at as sent (ints signed, ts as a number, ids as strings)."""
    if isinstance(avro, list):  # ["null", X]: a record stays a Tuple (of Nullables), NULL read as default
        inner = _clickhouse_type(next(t for t in avro if t != "null"))
        return inner if inner.startswith("Tuple") else f"Nullable({inner})"
    if isinstance(avro, str):
        return _PRIMITIVES[avro]
    kind = avro["type"]
    if kind == "record":
        return "Tuple(" + ", ".join(f"{f['name']} {_clickhouse_type(f['type'])}" for f in avro["fields"]) + ")"
    if kind == "map":
        return f"Map(String, {_clickhouse_type(avro['values'])})"
    if kind == "enum":
        return "String"
    return _clickhouse_type(kind)  # a primitive with a logical type
