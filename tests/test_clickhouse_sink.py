"""ClickHouseTables against real ClickHouse: embedded chdb always, a server when one is configured.

chdb hosts one database path per process at a time (see sinks/clickhouse/client.py): any number
of clients may share the open path, a different path fails until every client of the first is
closed. So every chdb test gets its own path and the `sink` fixture closes it before the next
test opens another; a test that needs a second process uses a subprocess.

The backends: see clickhouse_backends.py (INFERWATCH_CLICKHOUSE_URL adds a server).
"""

from __future__ import annotations

import datetime as dt
import math
import os
import subprocess
import sys
import textwrap
import uuid

import numpy as np
import pytest

from inferwatch.processors.aggregators import outputs as aggregator_outputs

from clickhouse_backends import dsn, server_dsn  # noqa: F401 (fixtures)
from inferwatch.schemas.registry import event_schema
from inferwatch.schemas.wire import RESOURCE_FIELDS, STATUSES
from inferwatch.sinks.clickhouse.client import ChdbPathConflict, ClickHouseLocked, connect
from inferwatch.sinks.clickhouse.rows import event_columns
from inferwatch.sinks.clickhouse.tables import (
    ALERT_COLUMNS,
    DEAD_LETTER_COLUMNS,
    DRIFT_COLUMNS,
    EVENT_COLUMNS,
    FEEDBACK_ROLLUP_COLUMNS,
    ROLLUP_COLUMNS,
    TABLES,
    ClickHouseTables,
    arrow_table_for,
)

pytestmark = pytest.mark.integration  # embedded chdb (ClickHouse) engine: not in `make unit`

T0_MS = 1_780_000_000_123  # 2026-05-28 20:26:40.123 UTC: not a whole second, to see the ms survive


def utc_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)


# --- backends ------------------------------------------------------------------------------------


@pytest.fixture
def sink(dsn):
    sink = ClickHouseTables(dsn)
    sink.ensure_schema()
    for table in TABLES:  # the server database is shared by the session's tests
        sink.query(f"TRUNCATE TABLE {table}")
    yield sink
    sink.close()


# --- test data -----------------------------------------------------------------------------------


def make_events(n: int) -> list[dict]:
    """Events as the codec decodes them: every optional field both null and set, maps empty and not."""
    events = []
    for i in range(n):
        full = i % 2 == 0
        events.append({
            "event_id": str(uuid.UUID(int=i + 1)),
            "ts": T0_MS + i * 7,
            "service": f"svc-{i % 3}", "route": "/v1/chat", "model": f"model-{i % 2}",
            "model_version": "v1", "tenant_id": "acme",
            "user_id": f"u{i}" if full else None, "request_id": f"req-{i}" if full else None,
            "trace_id": f"{i:032x}" if full else None, "span_id": f"{i:016x}" if full else None,
            "status": STATUSES[i % len(STATUSES)],
            "error_type": "RateLimitError" if STATUSES[i % len(STATUSES)] == "ERROR" else None,
            "latency_ms": 100.5 + i, "ttft_ms": 20.25 if full else None,
            "input_tokens": 10 + i, "output_tokens": 2**31 + i,  # past Int32: it is a UInt32 column
            "cost_usd": 0.001 * i if full else None, "finish_reason": "stop" if full else None,
            "prompt_chars": 40 + i, "response_chars": 80 + i,
            "prompt_oov_rate": 0.125 if full else None, "topic": "billing" if full else None,
            "confidence": 0.5 if full else None,
            "quality_scores": {"rouge_l": 0.75, "toxicity": 0.0} if full else {},
            "resources": {"gpu_util": 0.5, "gpu_mem_mb": 1024.0, "cpu_util": None, "mem_mb": 2048.0} if full else None,
            "prompt_text": "Grüße, wie geht's? 你好" if full else None,
            "response_text": "line 1\nline 2\t'quoted'" if full else None,
            "attributes": {"region": "eu-west-1", "replica": str(i)} if full else {},
        })
    return events


def expected_row(event: dict) -> dict:
    row = {name: event[name] for name in EVENT_COLUMNS if name not in RESOURCE_FIELDS}
    row.update({name: (event["resources"] or {}).get(name) for name in RESOURCE_FIELDS})
    row["event_id"] = uuid.UUID(event["event_id"])
    row["ts"] = utc_ms(event["ts"])
    return row


# --- schema --------------------------------------------------------------------------------------


def test_schema_applies_twice_and_matches_the_column_constants(sink):
    sink.ensure_schema()
    sink.ensure_schema()
    for table, names in [("inference_events", EVENT_COLUMNS), ("window_rollups", ROLLUP_COLUMNS),
                         ("feedback_rollups", FEEDBACK_ROLLUP_COLUMNS),
                         ("dead_letters", DEAD_LETTER_COLUMNS), ("alerts", ALERT_COLUMNS),
                         ("drift_metrics", DRIFT_COLUMNS)]:
        # Stored columns only: `resources` (EPHEMERAL) exists for the Avro insert alone.
        described = [row[0] for row in sink.query(f"DESCRIBE TABLE {table}").rows if row[2] != "EPHEMERAL"]
        # ingested_at is filled by the table, so the sink's column list leaves it out.
        assert [c for c in described if c != "ingested_at"] == list(names), table


def test_event_columns_are_the_avro_fields_with_resources_flattened():
    """EVENT_SPEC is the one Python list of event columns: what producers send (the .avsc) and,
    above, what is stored (DESCRIBE TABLE) are checked against it."""
    flattened = []
    for field in event_schema()["fields"]:
        flattened += RESOURCE_FIELDS if field["name"] == "resources" else [field["name"]]
    assert list(EVENT_COLUMNS) == flattened


def test_window_rollups_have_a_column_of_the_type_each_stored_aggregator_output_declares(sink):
    sink.ensure_schema()
    types = dict(row[:2] for row in sink.query("DESCRIBE TABLE window_rollups").rows)
    stored = [o for o in aggregator_outputs() if o.stored]
    assert stored and {o.name: types.get(o.name) for o in stored} == {o.name: o.clickhouse_type for o in stored}


# --- events --------------------------------------------------------------------------------------


def test_events_round_trip(sink):
    events = make_events(200)
    started = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    sink.insert_events(event_columns(events[:120]))
    sink.insert_events(event_columns(events[120:]))

    (count, distinct), = sink.query("SELECT count(), uniqExact(event_id) FROM inference_events").rows
    assert (count, distinct) == (200, 200)

    result = sink.query(f"SELECT {', '.join(EVENT_COLUMNS)} FROM inference_events ORDER BY event_id")
    assert result.column_names == list(EVENT_COLUMNS)
    for event, row in zip(events, result.rows, strict=True):
        got = dict(zip(result.column_names, row))
        assert got == expected_row(event), event["event_id"]
        assert got["ts"].tzinfo is not None and got["ts"].utcoffset() == dt.timedelta(0)

    # Milliseconds are stored, not rounded away; the table stamps ingested_at.
    rows = sink.query(
        "SELECT toUnixTimestamp64Milli(ts), ingested_at, toTypeName(ts) FROM inference_events ORDER BY event_id"
    ).rows
    assert [r[0] for r in rows] == [e["ts"] for e in events]
    assert all(r[1] >= started for r in rows)
    assert rows[0][2] == "DateTime64(3, 'UTC')"


def test_events_from_numpy_columns_with_nan_as_null(sink):
    events = make_events(10)
    columns = event_columns(events)
    for name in ("ts", "input_tokens", "output_tokens", "prompt_chars", "response_chars"):
        columns[name] = np.asarray(columns[name], dtype=np.int64)
    for name in ("latency_ms", "ttft_ms", "cost_usd"):
        columns[name] = np.array([math.nan if v is None else v for v in columns[name]], dtype=np.float64)
    sink.insert_events(columns)

    rows = sink.query(
        "SELECT toUnixTimestamp64Milli(ts), output_tokens, latency_ms, ttft_ms, cost_usd "
        "FROM inference_events ORDER BY event_id"
    ).rows
    expected = [(e["ts"], e["output_tokens"], e["latency_ms"], e["ttft_ms"], e["cost_usd"]) for e in events]
    assert rows == expected  # the NaNs came back as NULL (None)


def test_event_columns_are_checked_before_inserting():
    columns = event_columns(make_events(3))
    with pytest.raises(ValueError, match=r"missing columns \['attributes'\]"):
        arrow_table_for("inference_events", {k: v for k, v in columns.items() if k != "attributes"})
    with pytest.raises(ValueError, match=r"unknown columns \['resources'\]"):
        arrow_table_for("inference_events", {**columns, "resources": [None] * 3})
    with pytest.raises(ValueError, match="latency_ms: 1 NULL value"):
        arrow_table_for("inference_events", {**columns, "latency_ms": [1.0, None, 2.0]})
    with pytest.raises(ValueError, match="differ in length"):
        arrow_table_for("inference_events", {**columns, "model": ["m"] * 2})


# --- rollups, dead letters, alerts ---------------------------------------------------------------


SAMPLE_VALUES = {"u64": 2**40 + 1, "f64": 1500.25, "map_u64": {"RateLimitError": 2**33, "OOM": 1},
                 "map_f64": {"faithfulness": 0.75}}


def test_rollups_dead_letters_and_alerts_round_trip(sink):
    window_start_ms = 1_780_000_020_000
    rollup = {
        "window_start": window_start_ms, "window_seconds": 300, "hop_seconds": 60, "keyset": "model",
        "service": "chat", "model": "m", "model_version": "v2", "tenant_id": "", "route": "",
        "source_partition": -1, "events": 2**40,
        # A value of each registered aggregator's stored outputs, at the edges of its type.
        **{o.name: SAMPLE_VALUES[o.kind] for o in aggregator_outputs() if o.stored},
        "latency_p50_ms": None,  # a Nullable output without a value
        "closed_at": T0_MS,
    }
    # Datetimes work as well as epoch ms; numpy scalars as well as Python numbers.
    rollup_2 = {**rollup, "model": "m2", "window_start": utc_ms(window_start_ms), "events": np.uint64(7),
                "cost_usd": np.float64(0.5), "closed_at": utc_ms(T0_MS)}
    sink.insert_rollups([rollup, rollup_2])
    result = sink.query(f"SELECT {', '.join(ROLLUP_COLUMNS)} FROM window_rollups ORDER BY model")
    expected = {**rollup, "window_start": utc_ms(window_start_ms), "closed_at": utc_ms(T0_MS)}
    assert [dict(zip(result.column_names, r)) for r in result.rows] == [
        expected, {**expected, "model": "m2", "events": 7, "cost_usd": 0.5}
    ]

    payload = b"\x00\xff\xfe not avro \x81"
    sink.insert_dead_letters([
        {"received_at": T0_MS, "topic": "llm.inference.v1", "partition": 3, "offset": 2**40,
         "reason": "unknown schema id 99", "payload": payload},
        {"received_at": T0_MS + 1, "topic": "llm.inference.v1", "partition": 0, "offset": 0,
         "reason": "empty message", "payload": b""},
    ])
    rows = sink.query(
        "SELECT received_at, topic, `partition`, `offset`, reason, hex(payload) FROM dead_letters ORDER BY received_at"
    ).rows
    assert rows == [
        (utc_ms(T0_MS), "llm.inference.v1", 3, 2**40, "unknown schema id 99", payload.hex().upper()),
        (utc_ms(T0_MS + 1), "llm.inference.v1", 0, 0, "empty message", ""),
    ]

    alert = {"fired_at": T0_MS, "rule": "p99_latency", "keyset": "model", "series": "chat|m|v2",
             "labels": {"service": "chat", "model": "m", "model_version": "v2"},
             "service": "chat", "model": "m", "model_version": "v2",
             "window_start": window_start_ms, "window_seconds": 300, "hop_seconds": 60, "value": 15000.5, "threshold": 10000.0,
             "message": "p99 latency 15000.5 ms > 10000 ms"}
    sink.insert_alerts([alert])
    result = sink.query(f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts")
    assert [dict(zip(result.column_names, r)) for r in result.rows] == [
        {**alert, "fired_at": utc_ms(T0_MS), "window_start": utc_ms(window_start_ms)}
    ]


def test_rows_with_missing_or_unknown_keys_are_rejected(sink):
    row = {"fired_at": T0_MS, "rule": "r", "keyset": "k", "series": "s", "labels": {}, "service": "s", "model": "m",
           "model_version": "v", "window_start": T0_MS, "window_seconds": 60, "hop_seconds": 0, "value": 1.0,
           "threshold": 0.5}
    with pytest.raises(ValueError, match=r"missing keys \['message'\]"):
        sink.insert_alerts([row])
    with pytest.raises(ValueError, match=r"unknown keys \['window_start_ms'\]"):
        sink.insert_alerts([{**row, "message": "", "window_start_ms": 0}])
    sink.insert_alerts([])  # nothing to do, no error
    assert sink.query("SELECT count() FROM alerts").rows == [(0,)]


def test_query_binds_parameters(sink):
    sink.insert_events(event_columns(make_events(5)))
    result = sink.query(
        "SELECT count() AS n FROM inference_events WHERE ts >= {since:DateTime64(3, 'UTC')} AND status = {status:String}",
        {"since": utc_ms(T0_MS + 7), "status": "OK"},
    )
    assert result.column_names == ["n"]
    assert result.rows == [(1,)]  # events 1..4 are past `since`; of those only event 4 is OK


# --- chdb specifics ------------------------------------------------------------------------------


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
        env={**os.environ, **env},
    )


def test_second_process_on_the_same_chdb_path_gets_a_clear_error(tmp_path):
    path = tmp_path / "clickhouse"
    with ClickHouseTables(f"chdb://{path}") as sink:
        sink.ensure_schema()
        other = run_python(f"""
            from inferwatch.sinks.clickhouse.tables import ClickHouseTables
            try:
                ClickHouseTables("chdb://{path}")
            except Exception as exc:
                print(type(exc).__name__)
                print(exc)
            else:
                print("opened")
        """)
    kind, _, message = other.stdout.partition("\n")
    assert kind == ClickHouseLocked.__name__, other.stdout + other.stderr
    assert str(path) in message
    assert f"PID {os.getpid()}" in message
    assert "only one process may open" in message
    assert "`inferwatch sql`" in message

    # Closed here, the path is free for another process again.
    after = run_python(f"""
        from inferwatch.sinks.clickhouse.tables import ClickHouseTables
        with ClickHouseTables("chdb://{path}") as sink:
            print(sink.query("SELECT count() FROM inference_events").rows)
    """)
    assert after.stdout.strip() == "[(0,)]", after.stderr


def test_one_chdb_path_per_process_at_a_time(tmp_path):
    first = ClickHouseTables(f"chdb://{tmp_path / 'a'}")
    try:
        same = ClickHouseTables(f"chdb://{tmp_path / 'a'}")  # a second client of the same path is fine
        same.close()
        with pytest.raises(ChdbPathConflict, match="one path per process"):
            ClickHouseTables(f"chdb://{tmp_path / 'b'}")
    finally:
        first.close()
    with ClickHouseTables(f"chdb://{tmp_path / 'b'}") as second:  # once closed, another path opens
        assert second.query("SELECT 1").rows == [(1,)]


def test_times_come_back_in_utc_whatever_the_host_timezone(tmp_path):
    # chdb reports DateTime('UTC') columns without their zone; the sink must still answer in UTC.
    out = run_python(f"""
        from inferwatch.sinks.clickhouse.tables import ClickHouseTables, ROLLUP_COLUMNS
        with ClickHouseTables("chdb://{tmp_path / 'ch'}") as sink:
            sink.ensure_schema()
            row = dict.fromkeys(ROLLUP_COLUMNS, 0)
            row.update(keyset="model", service="s", model="m", model_version="v", tenant_id="", route="", source_partition=-1,
                       error_types={{}}, quality_means={{}}, quality_counts={{}}, window_start={T0_MS}, closed_at={T0_MS})
            sink.insert_rollups([row])
            print(repr(sink.query("SELECT window_start, closed_at FROM window_rollups").rows))
    """, TZ="Asia/Kolkata")
    assert out.returncode == 0, out.stderr
    start, closed = eval(out.stdout, {"datetime": dt})[0]  # noqa: S307 - our own repr
    assert start == utc_ms(T0_MS // 1000 * 1000) and start.utcoffset() == dt.timedelta(0)
    assert closed == utc_ms(T0_MS) and closed.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("dsn", [
    "mysql://user@host/db", "clickhouse://host:9000", "", "/just/a/path",
    "chdb://relative/path", "http:///db",
])
def test_bad_dsn_raises_a_clear_value_error(dsn):
    with pytest.raises(ValueError, match=r"chdb:///absolute/path|has no host"):
        connect(dsn)


def test_bad_dsn_error_hides_the_password():
    with pytest.raises(ValueError) as info:
        connect("tcp://user:s3cret@host:9000/db")
    assert "s3cret" not in str(info.value)
