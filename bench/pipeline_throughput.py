"""End-to-end events/s of one worker, against the Avro decode ceiling measured in the same run.

Against a real local stack (its own state dir under /tmp, started and stopped here):
1. decode ceiling: fastavro decoding of the very batch messages used below, in this process,
   before the end-to-end runs and again after them (the mean is the ratio's denominator);
2. end to end, twice, each worker on a topic of its own: decoding in the worker process
   (decode_processes = 0), then with the default pool of decoder processes (processors/decoding.py).
   first a warm-up message, waited for in Redis and ClickHouse: it times the worker's one-off
   start (consumer group join, decoder processes spawned), reported on its own line. Then N events
   (pre-encoded batch messages of `producer_batch_events`) are produced as fast as the broker
   takes them; the clock stops when the worker's window state in Redis has counted all N and
   ClickHouse holds all N rows;
3. freshness at 80% of the pooled rate: events stamped with their send time (generated and
   encoded beforehand, so that producing them does not take the pipeline's CPU) are produced at
   0.8 x that rate for `--fresh-seconds`; every 0.2 s we compare what was produced with what
   Redis has counted and report the median and largest lag in seconds (how long after an event
   its window shows it). The events go to one partition of four, as a quiet fleet's would;
4. the same freshness, same rate, with a worker on Faust's own fetch wait (1500 ms), the baseline
   of `worker_fetch_max_wait_ms`.

Prints a table and, last, one JSON line with the headline figures and the baseline.
Usage: python bench/pipeline_throughput.py [--events 300000] [--fresh-seconds 20]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import redis
from confluent_kafka import Producer

from inferwatch.deploy import local_stack
from inferwatch.polling import wait_for
from inferwatch.processes import read_process, stop_process
from inferwatch.processors.worker import WORKER_PROCESS
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.query import QueryError, query_worker
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec
from inferwatch.settings import Settings
from inferwatch.sinks.redis.live_state import COUNTERS

POLL_S = 0.2
FAUST_FETCH_MAX_WAIT_MS = 1500  # what Faust's aiokafka driver fixes
_RUNS = itertools.count(1)


def encoded_batches(n_events: int, batch: int, start_ms: int, span_ms: int,
                    seed: int = 1) -> tuple[list[tuple[bytes, bytes]], int]:
    """(key, value) batch messages, one series per message as the publisher sends them."""
    codec = EventCodec(local_schema_ids())
    ts = np.sort(start_ms + np.random.default_rng(seed).integers(0, span_ms, n_events))
    events = TrafficModel(seed=seed).events(ts)
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


def run_worker(settings: Settings, warm_up: tuple[list[tuple[bytes, bytes]], int], messages: list[tuple[bytes, bytes]],
               n_events: int, fresh_seconds: float, fresh_rate: float | None = None, **overrides) -> dict:
    """One worker (settings `overrides`) over a topic of its own: once `warm_up` is counted, the
    end-to-end rate of `messages`, then (if fresh_seconds) freshness at 80% of it, or at
    `fresh_rate` when given."""
    run = f"bench-{next(_RUNS)}-{int(time.time())}"
    topics = {"events_topic": run, "dlq_topic": f"{run}.dlq", "feedback_topic": f"{run}.feedback", "app_id": run}
    settings = settings.model_copy(update={**overrides, **topics})
    local_stack.create_topics(settings, settings.resolved_kafka_bootstrap, progress=lambda line: None)
    env = {**os.environ, **{f"INFERWATCH_{name.upper()}": str(value) for name, value in {**overrides, **topics}.items()}}
    log = (settings.state_dir / f"worker-{run}.log").open("wb")
    worker = subprocess.Popen([sys.executable, "-m", "inferwatch.cli", "--state-dir", str(settings.state_dir),
                               "worker"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for("the worker's process record",
                 lambda: (read_process(settings, WORKER_PROCESS) or {}).get("pid") == worker.pid, 120, POLL_S / 4)
        web_url = read_process(settings, WORKER_PROCESS)["web_url"]

        def worker_answers() -> bool:
            try:
                return bool(query_worker(web_url, "SELECT 1"))
            except (OSError, QueryError):
                return False

        wait_for("the worker's web server", worker_answers, 120, POLL_S / 4)
        client = redis.Redis.from_url(settings.resolved_redis_url)
        client.delete(COUNTERS)
        # Every run produces the same event ids, which ReplacingMergeTree merges into one row; the
        # newest version survives, so this run's rows are those ingested since it started.
        since = query_worker(web_url, "SELECT toString(now64(3))")[1][0][0]
        stored_before = 0

        def counted() -> int:
            return int(client.hget(COUNTERS, "events") or 0)

        def stored() -> int:
            return query_worker(web_url, f"SELECT count() FROM inference_events WHERE ingested_at >= '{since}'"
                                )[1][0][0] - stored_before

        producer = Producer(settings.kafka_config(**{"linger.ms": 5, "compression.type": "lz4"}))
        result = {}
        if messages:
            started = time.perf_counter()
            warm_messages, warm_n = warm_up
            produce_all(producer, run, warm_messages)
            wait_for("the warm-up counted in Redis", lambda: counted() >= warm_n, 600, POLL_S / 4)
            wait_for("the warm-up in ClickHouse", lambda: stored() >= warm_n, 600, POLL_S / 4)
            result["warm_up_s"] = time.perf_counter() - started
            client.hincrby(COUNTERS, "events", -warm_n)
            stored_before += warm_n
            started = time.perf_counter()
            produce_all(producer, run, messages)
            produced_at = time.perf_counter()
            wait_for(f"{n_events} events counted in Redis", lambda: counted() >= n_events, 600, POLL_S / 4)
            in_redis_at = time.perf_counter()
            wait_for(f"{n_events} rows in ClickHouse", lambda: stored() >= n_events, 600, POLL_S / 4)
            in_clickhouse_at = time.perf_counter()
            result |= {"produce": n_events / (produced_at - started), "redis": n_events / (in_redis_at - started),
                      "end_to_end": n_events / (in_clickhouse_at - started)}
        if fresh_seconds:
            rate = fresh_rate or 0.8 * result["end_to_end"]
            result.update(freshness(settings, producer, run, counted, rate, fresh_seconds))
        return result
    finally:
        stop_process(settings, WORKER_PROCESS)
        worker.wait(60)


def freshness(settings: Settings, producer: Producer, topic: str, counted, rate: float, seconds: float) -> dict:
    """Events at `rate` for `seconds`; every POLL_S the lag of the Redis count behind what was produced.

    The events are generated and encoded before the clock starts, stamped with the time they are
    due to be sent: producing them must not take the CPU the pipeline is measured on (in
    production, services produce on other machines)."""
    batch = settings.producer_batch_events
    codec = EventCodec(local_schema_ids())
    n_batches = int(rate * seconds / batch)
    due_s = np.arange(n_batches) * batch / rate
    first_ms = int(time.time() * 1000) + 20_000  # ~ when sending starts, after the encoding below
    ts = first_ms + (np.repeat(due_s, batch) * 1000).astype(np.int64)
    events = TrafficModel(seed=2).events(ts)
    payloads = [codec.encode_batch(events[i * batch:(i + 1) * batch]) for i in range(n_batches)]
    base = counted()
    produced, lags = 0, []
    started = time.perf_counter()
    next_check = started + POLL_S
    while produced < n_batches * batch:
        elapsed = time.perf_counter() - started
        while produced < n_batches * batch and due_s[produced // batch] <= elapsed:
            producer.produce(topic, value=payloads[produced // batch], key=b"fresh")
            produced += batch
        producer.poll(0)
        if time.perf_counter() >= next_check:
            next_check += POLL_S
            lags.append(max(0, produced - (counted() - base)) / rate)
        time.sleep(0.001)
    producer.flush(30)
    return {"fresh_rate": rate, "lag_median": float(np.median(lags)), "lag_max": max(lags)}


def start_stack(prefix: str) -> Settings:
    """A local stack of its own under /tmp; the returned settings name its broker and Redis."""
    settings = Settings(state_dir=Path(tempfile.mkdtemp(prefix=prefix)))
    local_stack.up(settings, progress=lambda line: print(f"[stack] {line}"))
    return settings.model_copy(update={
        "kafka_bootstrap": settings.resolved_kafka_bootstrap, "redis_url": settings.resolved_redis_url})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--fresh-seconds", type=float, default=20.0)
    args = parser.parse_args()
    settings = start_stack("iw-bench-pipeline-")
    try:
        window_ms = settings.window_seconds * 1000
        start_ms = int(time.time() * 1000 - 30 * window_ms) // window_ms * window_ms
        messages, n_events = encoded_batches(args.events, settings.producer_batch_events, start_ms, 20 * window_ms)
        # Measured before and after the end-to-end runs, which it is the ratio's denominator of:
        # this machine's speed drifts by 10-20 % over minutes, and one measurement swung the ratio.
        ceilings = [decode_ceiling(messages)]
        # Before the measured events' time span: the warm-up must not move the watermark past them.
        warm_up = encoded_batches(settings.producer_batch_events, settings.producer_batch_events,
                                  start_ms - 5 * window_ms, 5 * window_ms, seed=3)
        in_process = run_worker(settings, warm_up, messages, n_events, 0, decode_processes=0)
        pooled = run_worker(settings, warm_up, messages, n_events, args.fresh_seconds)
        ceilings.append(decode_ceiling(messages))
        ceiling = sum(ceilings) / 2
        # The same freshness with Faust's own fetch wait (what processors/kafka_transport.py replaces).
        faust_wait = run_worker(settings, ([], 0), [], 0, args.fresh_seconds, pooled["fresh_rate"],
                                worker_fetch_max_wait_ms=FAUST_FETCH_MAX_WAIT_MS)
    finally:
        local_stack.down(settings, progress=lambda line: print(f"[stack] {line}"))

    pool = f"+ {settings.decode_processes} decoder processes"
    print(f"\none worker, {n_events:,} events in {len(messages):,} batch messages, each run on a topic of its own")
    print(f"{'measure':52} {'decoding in-process':>20} {pool:>24}")
    for name, key in (("produce (all messages acknowledged), ev/s", "produce"),
                      ("end to end: windows in Redis, ev/s", "redis"),
                      ("end to end: + rows in ClickHouse, ev/s", "end_to_end")):
        print(f"{name:52} {in_process[key]:>20,.0f} {pooled[key]:>24,.0f}")
    print(f"{'warm-up: the first message in Redis and ClickHouse, s':52} {in_process['warm_up_s']:>20.1f} "
          f"{pooled['warm_up_s']:>24.1f}")
    print(f"{'ratio to the decode ceiling':52} {in_process['end_to_end'] / ceiling:>20.0%} "
          f"{pooled['end_to_end'] / ceiling:>24.0%}")
    print(f"{'baseline: Avro decode ceiling (fastavro, 1 core), ev/s':52} {ceiling:>20,.0f}"
          f"   (mean of {ceilings[0]:,.0f} before and {ceilings[1]:,.0f} after)")
    print(f"\nfreshness at 80% of the rate ({pooled['fresh_rate']:,.0f} ev/s, {pool}): lag from publish to the Redis window")
    print(f"{'fetch wait':52} {'median s':>10} {'max s':>10}")
    for name, result in ((f"{settings.worker_fetch_max_wait_ms} ms (worker_fetch_max_wait_ms)", pooled),
                         (f"baseline: {FAUST_FETCH_MAX_WAIT_MS} ms (Faust's own)", faust_wait)):
        print(f"{name:52} {result['lag_median']:>10.2f} {result['lag_max']:>10.2f}")
    print(json.dumps({
        "bench": "pipeline_throughput",
        "decode_processes": settings.decode_processes,
        "end_to_end_events_per_s": round(pooled["end_to_end"]),
        "redis_events_per_s": round(pooled["redis"]),
        "ratio_to_decode_ceiling": round(pooled["end_to_end"] / ceiling, 3),
        "warm_up_s": round(pooled["warm_up_s"], 2),
        "in_process_end_to_end_events_per_s": round(in_process["end_to_end"]),
        "in_process_ratio_to_decode_ceiling": round(in_process["end_to_end"] / ceiling, 3),
        "baseline_decode_ceiling_events_per_s": round(ceiling),
        "baseline_decode_ceiling_before_after": [round(c) for c in ceilings],
        "fresh_rate_events_per_s": round(pooled["fresh_rate"]),
        "freshness_median_lag_s": round(pooled["lag_median"], 3),
        "freshness_max_lag_s": round(pooled["lag_max"], 3),
        "faust_fetch_wait_freshness_median_lag_s": round(faust_wait["lag_median"], 3),
        "faust_fetch_wait_freshness_max_lag_s": round(faust_wait["lag_max"], 3),
        "target_ratio": 0.6,
        "target_max_lag_s": 1.0,
    }))


if __name__ == "__main__":
    main()
