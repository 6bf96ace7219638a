"""End-to-end events/s of one worker process, against the Avro decode ceiling measured in the same run.

Against a real local stack (its own state dir under /tmp, started and stopped here):
1. decode ceiling: fastavro decoding of the very batch messages used below, in this process;
2. end to end: N events (pre-encoded batch messages of `producer_batch_events`) produced as fast
   as the broker takes them; the clock stops when the worker's window state in Redis has counted
   all N and ClickHouse holds all N rows;
3. freshness at 80% of that rate: events with ts = now are produced at 0.8 x the end-to-end rate
   for `--fresh-seconds`; every 0.2 s we compare what was produced with what Redis has counted
   and report the largest lag in seconds (how long after an event its window shows it).

Prints a table and, last, one JSON line with the headline figures and the baseline.
Usage: python bench/pipeline_throughput.py [--events 300000] [--fresh-seconds 20]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import redis
from confluent_kafka import Producer

from inferwatch.deploy import local_stack
from inferwatch.processors.worker import WORKER_PROCESS
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.query import QueryError, query_worker
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec
from inferwatch.settings import Settings
from inferwatch.sinks.redis.live_state import COUNTERS

POLL_S = 0.2


def encoded_batches(n_events: int, batch: int, start_ms: int, span_ms: int) -> tuple[list[tuple[bytes, bytes]], int]:
    """(key, value) batch messages, one series per message as the publisher sends them."""
    codec = EventCodec(local_schema_ids())
    ts = np.sort(start_ms + np.random.default_rng(1).integers(0, span_ms, n_events))
    events = TrafficModel(seed=1).events(ts)
    by_series: dict[tuple, list] = {}
    for event in events:
        by_series.setdefault((event["service"], event["model"]), []).append(event)
    messages = []
    for (service, model), series in by_series.items():
        for i in range(0, len(series), batch):
            messages.append((f"{service}|{model}".encode(), codec.encode_batch(series[i:i + batch])))
    return messages, len(events)


def produce_all(producer: Producer, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    """Produce as fast as the broker takes them, and wait until all are acknowledged."""
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:  # librdkafka's queue is full: let it deliver some
                producer.poll(0.05)
    assert producer.flush(120) == 0, "not all messages were acknowledged"


def decode_ceiling(messages: list[tuple[bytes, bytes]]) -> float:
    codec = EventCodec(local_schema_ids())
    started = time.perf_counter()
    decoded = sum(len(codec.decode(value)) for _, value in messages)
    return decoded / (time.perf_counter() - started)


def wait_until(condition, timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the pipeline did not catch up in time")
        time.sleep(POLL_S / 4)
    return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--fresh-seconds", type=float, default=20.0)
    args = parser.parse_args()
    settings = Settings(state_dir=Path(tempfile.mkdtemp(prefix="iw-bench-pipeline-")))
    local_stack.up(settings, progress=lambda line: print(f"[stack] {line}"))
    worker = None
    try:
        window_ms = settings.window_seconds * 1000
        start_ms = int(time.time() * 1000 - 30 * window_ms) // window_ms * window_ms
        messages, n_events = encoded_batches(args.events, settings.producer_batch_events, start_ms, 20 * window_ms)
        ceiling = decode_ceiling(messages)

        log = (settings.state_dir / "worker.log").open("wb")
        worker = subprocess.Popen([sys.executable, "-m", "inferwatch.cli", "--state-dir", str(settings.state_dir),
                                   "worker"], stdout=log, stderr=subprocess.STDOUT)
        wait_until(lambda: local_stack.read_process(settings, WORKER_PROCESS) is not None, 120)
        web_url = local_stack.read_process(settings, WORKER_PROCESS)["web_url"]

        def worker_answers() -> bool:
            try:
                return bool(query_worker(web_url, "SELECT 1"))
            except (OSError, QueryError):
                return False

        wait_until(worker_answers, 120)
        client = redis.Redis.from_url(settings.resolved_redis_url)

        def counted() -> int:
            return int(client.hget(COUNTERS, "events") or 0)

        def stored() -> int:
            return query_worker(web_url, "SELECT count() FROM inference_events")[1][0][0]

        producer = Producer(settings.kafka_config(**{"linger.ms": 5, "compression.type": "lz4"}))
        started = time.perf_counter()
        produce_all(producer, settings.events_topic, messages)
        produced_at = time.perf_counter()
        in_redis_at = wait_until(lambda: counted() >= n_events, 600)
        in_clickhouse_at = wait_until(lambda: stored() >= n_events, 600)
        e2e_rate = n_events / (in_clickhouse_at - started)

        # Freshness at 80% of the end-to-end rate, events stamped now.
        fresh_rate = 0.8 * e2e_rate
        fresh_batch = settings.producer_batch_events
        codec = EventCodec(local_schema_ids())
        model = TrafficModel(seed=2)
        base = counted()
        produced, max_lag_s, lags = 0, 0.0, []
        fresh_started = time.perf_counter()
        next_check = fresh_started + POLL_S
        while time.perf_counter() - fresh_started < args.fresh_seconds:
            due = int((time.perf_counter() - fresh_started) * fresh_rate)
            if due - produced >= fresh_batch:
                events = model.events(np.full(fresh_batch, int(time.time() * 1000)))
                producer.produce(settings.events_topic, value=codec.encode_batch(events), key=b"fresh")
                produced += fresh_batch
                producer.poll(0)
            if time.perf_counter() >= next_check:
                next_check += POLL_S
                backlog = produced - (counted() - base)
                lag = max(0, backlog) / fresh_rate
                lags.append(lag)
                max_lag_s = max(max_lag_s, lag)
            time.sleep(0.001)
        producer.flush(30)
    finally:
        if worker is not None:
            local_stack.stop_process(settings, WORKER_PROCESS)
            worker.wait(60)
        local_stack.down(settings, progress=lambda line: print(f"[stack] {line}"))

    print(f"\none worker process, {n_events:,} events in {len(messages):,} batch messages")
    print(f"{'measure':44} {'value':>14}")
    print(f"{'Avro decode ceiling (fastavro, 1 core)':44} {ceiling:>10,.0f} ev/s")
    print(f"{'produce (all messages acknowledged)':44} {n_events / (produced_at - started):>10,.0f} ev/s")
    print(f"{'end to end: windows in Redis':44} {n_events / (in_redis_at - started):>10,.0f} ev/s")
    print(f"{'end to end: + rows in ClickHouse':44} {e2e_rate:>10,.0f} ev/s")
    print(f"{'ratio to the decode ceiling':44} {e2e_rate / ceiling:>13.0%}")
    print(f"{'freshness at 80% rate: median lag':44} {np.median(lags):>12.2f} s")
    print(f"{'freshness at 80% rate: max lag':44} {max_lag_s:>12.2f} s")
    print(json.dumps({
        "bench": "pipeline_throughput",
        "end_to_end_events_per_s": round(e2e_rate),
        "redis_events_per_s": round(n_events / (in_redis_at - started)),
        "baseline_decode_ceiling_events_per_s": round(ceiling),
        "ratio_to_decode_ceiling": round(e2e_rate / ceiling, 3),
        "fresh_rate_events_per_s": round(fresh_rate),
        "freshness_median_lag_s": round(float(np.median(lags)), 3),
        "freshness_max_lag_s": round(max_lag_s, 3),
        "target_ratio": 0.6,
        "target_max_lag_s": 1.0,
    }))


if __name__ == "__main__":
    main()
