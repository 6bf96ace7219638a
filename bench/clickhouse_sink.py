"""Rows/s of the ClickHouse sink from Kafka into chdb, next to chdb's own insert speed for the same rows.

Against a real local stack (its own state dir under /tmp, started and stopped here), one run:
1. sink: N events (pre-encoded batch messages, as the publisher sends them) are produced to a
   topic of their own; the clock runs from the sink's first message (after its consumer group
   join, reported apart) until it has inserted all N (Avro passthrough: ClickHouse parses the
   messages' Avro, see avro_container.py);
2. Avro passthrough without Kafka: one container of all N messages into the intake view, which
   unpacks and validates their events (event_intake.py), one insert (the engine's parse, check
   + write ceiling for this path); and the same events straight into inference_events, unchecked
   (the path before the intake view: the cost of validation in ClickHouse);
3. the Arrow path the sink replaced: fastavro decode + columns + Arrow insert, per 50k rows;
4. baseline, chdb bulk insert: the same N rows already in memory as one Arrow table, one insert.
Each insert goes into an empty inference_events. Prints a table and, last, one JSON line.
Usage: python bench/clickhouse_sink.py [--events 500000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).parent))
from pipeline_throughput import encoded_batches, produce_all, start_stack  # noqa: E402 (a sibling script)

from inferwatch.deploy import local_stack  # noqa: E402
from inferwatch.schemas.registry import local_schema_ids  # noqa: E402
from inferwatch.schemas.wire import EventCodec, unframe  # noqa: E402
from inferwatch.sinks.clickhouse.avro_container import RecordBlock, array_blocks, object_container  # noqa: E402
from inferwatch.sinks.clickhouse.clickhouse_thread import ClickHouseThread  # noqa: E402
from inferwatch.schemas.registry import event_schema  # noqa: E402
from inferwatch.sinks.clickhouse.event_intake import message_record  # noqa: E402
from inferwatch.sinks.clickhouse.kafka_sink import EVENTS, ClickHouseEventSink  # noqa: E402
from inferwatch.sinks.clickhouse.rows import event_columns  # noqa: E402
from inferwatch.sinks.clickhouse.tables import arrow_table_for  # noqa: E402

ARROW_BATCH_ROWS = 50_000


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000)
    args = parser.parse_args()
    settings = start_stack("iw-bench-sink-")
    clickhouse = None
    try:
        start_ms = int(time.time() * 1000) - 3600_000
        messages, n = encoded_batches(args.events, settings.producer_batch_events, start_ms, 3600_000)
        print(f"{n:,} events in {len(messages):,} batch messages of {settings.producer_batch_events}")
        producer = Producer(settings.kafka_config(**{"linger.ms": 5, "compression.type": "lz4"}))
        produce_all(producer, settings.events_topic, messages)

        clickhouse = ClickHouseThread(settings)
        chdb = clickhouse.tables

        def on_chdb(fn, *a):
            return clickhouse.submit(fn, *a).result()

        def empty_table():
            on_chdb(chdb.query, "TRUNCATE TABLE inference_events")

        empty_table()
        sink = ClickHouseEventSink(settings, clickhouse)
        started = time.perf_counter()
        sink.start()
        while sink.stats.rows_read == 0:
            time.sleep(0.001)
        # Joining a new consumer group waits for the broker's group.initial.rebalance.delay.ms
        # (3 s by default): a one-off, reported apart from the throughput.
        joined = time.perf_counter()
        while sink.stats.rows_written < n:
            time.sleep(0.01)
        sink_s = time.perf_counter() - joined
        join_s = joined - started
        sink.stop()
        stored = on_chdb(chdb.query, "SELECT count() FROM inference_events FINAL").rows[0][0]
        assert stored == n, (stored, n)

        empty_table()
        records = [RecordBlock(1, message_record(unframe(value)[1], True, start_ms + 3600_000)) for _, value in messages]
        container = object_container(EVENTS.schema, records)
        passthrough_s = timed(lambda: on_chdb(chdb.insert_avro, EVENTS.name, EVENTS.columns, container, "bench"))
        assert on_chdb(chdb.query, "SELECT count() FROM inference_events").rows[0][0] == n

        empty_table()
        blocks = [b for _, value in messages for b in array_blocks(unframe(value)[1])]
        columns = [f["name"] for f in event_schema()["fields"]]
        unchecked_s = timed(lambda: on_chdb(chdb.insert_avro, "inference_events", columns,
                                            object_container(event_schema(), blocks), "bench-unchecked"))

        codec = EventCodec(local_schema_ids())
        empty_table()
        arrow_path_s = 0.0
        batch_messages = ARROW_BATCH_ROWS // settings.producer_batch_events
        for i in range(0, len(messages), batch_messages):
            chunk = messages[i:i + batch_messages]
            arrow_path_s += timed(lambda: on_chdb(chdb.insert_events, event_columns(
                [e for _, value in chunk for e in codec.decode(value)])))

        table = arrow_table_for("inference_events", event_columns([e for _, value in messages for e in codec.decode(value)]))
        empty_table()
        bulk_s = timed(lambda: on_chdb(chdb._client.insert_arrow, "inference_events", table))
    finally:
        if clickhouse is not None:
            clickhouse.close()
        local_stack.down(settings, progress=lambda line: print(f"[stack] {line}"))

    rates = {
        "sink from Kafka (Avro passthrough, commit)": n / sink_s,
        "Avro passthrough, one insert, no Kafka (intake view)": n / passthrough_s,
        "  the same, straight into inference_events, unchecked": n / unchecked_s,
        f"Arrow path (fastavro decode, {ARROW_BATCH_ROWS // 1000}k-row inserts)": n / arrow_path_s,
        "baseline: chdb bulk insert of one Arrow table": n / bulk_s,
    }
    print(f"\n{n:,} rows into chdb, {settings.clickhouse_batch_rows:,}-row sink batches; "
          f"the sink's group join took {join_s:.1f} s before its first message (not counted)")
    print(f"{'path':58} {'rows/s':>10} {'vs bulk':>8}")
    for name, rate in rates.items():
        print(f"{name:58} {rate:>10,.0f} {rate * bulk_s / n:>8.0%}")
    print(json.dumps({
        "bench": "clickhouse_sink",
        "events": n,
        "sink_rows_per_s": round(n / sink_s),
        "avro_passthrough_rows_per_s": round(n / passthrough_s),
        "unchecked_passthrough_rows_per_s": round(n / unchecked_s),
        "arrow_path_rows_per_s": round(n / arrow_path_s),
        "baseline_bulk_insert_rows_per_s": round(n / bulk_s),
        "sink_vs_bulk_insert": round(bulk_s / sink_s, 3),
        "sink_group_join_s": round(join_s, 2),
        "target_sink_rows_per_s": 500_000,
    }))


if __name__ == "__main__":
    main()
