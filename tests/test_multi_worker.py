"""Two workers on a 4-partition topic, the second joining mid-stream (a rebalance), produce the
windows one worker would: every window exact, and written once across both."""

import threading
import time
import uuid

import numpy as np
import pytest
import redis

from exact import add_partials, all_counted, assert_window_matches, exact_hopping, exact_windows, from_redis, window_series
from inferwatch.deploy.local_stack import create_topics
from inferwatch.producers.publisher import EventPublisher
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.sinks.redis.live_state import COUNTERS, LATE_EVENTS, read_windows
from waiting import wait_for
from workers import Worker

pytestmark = pytest.mark.integration
# 10 s panes and 30 s windows every 10 s: on a quiet stream event time follows the wall clock
# (watermark.py), so the longest window closes ~30 s after the last event, not minutes.
WINDOW_S = 10
N_EVENTS = 12_000  # and those that keep the stream going while the second worker starts


def test_two_workers_and_a_rebalance_give_each_window_once_and_exact(stack, tmp_path):
    run = uuid.uuid4().hex[:8]
    base = stack.model_copy(update={
        "events_topic": f"mw-{run}", "dlq_topic": f"mw-{run}.dlq", "feedback_topic": f"mw-{run}.feedback",
        "app_id": f"mw-{run}", "kafka_bootstrap": stack.resolved_kafka_bootstrap,
        # A Redis database of its own: no other test's windows in the way.
        "redis_url": stack.resolved_redis_url.rsplit("/", 1)[0] + "/3",
        "window_seconds": WINDOW_S, "allowed_lateness_seconds": 2.0, "partition_idle_seconds": 2.0,
        "live_update_seconds": 0.5, "longer_windows": ["30s/10s"],
    })
    create_topics(base, base.kafka_bootstrap, progress=lambda _: None)
    client = redis.Redis.from_url(base.redis_url)
    client.flushdb()

    window_ms = WINDOW_S * 1000
    t0 = int(time.time() * 1000 - 20 * window_ms) // window_ms * window_ms
    ts = np.sort(t0 + np.random.default_rng(5).integers(0, 4 * window_ms, N_EVENTS))
    events = TrafficModel(seed=5).events(ts)

    first = Worker(base.model_copy(update={"state_dir": tmp_path / "a"}), "worker-a")
    publisher = EventPublisher(base)
    half = int(np.searchsorted(ts, t0 + 2 * window_ms))
    for event in events[:half]:
        publisher.publish(event)
    assert publisher.flush(30) == 0
    # Traffic goes on while the second worker starts, as in production: a stream silent for
    # longer than idle + lateness (4 s; a loaded machine starts a worker in tens of seconds)
    # would let event time follow the wall clock (watermark.py) and make what comes next late.
    # These events keep every series at the first half's newest time until the second is up.
    going_on, undelivered, flowing = [], [], threading.Event()

    def keep_flowing():
        trickle = EventPublisher(base)
        model = TrafficModel(seed=6)
        while not flowing.wait(0.5):
            batch = model.events(np.full(30, ts[half - 1]))
            for event in batch:
                trickle.publish(event)
            undelivered.append(trickle.flush(30))
            going_on.extend(batch)

    flow = threading.Thread(target=keep_flowing)
    flow.start()
    try:
        second = Worker(base.model_copy(update={"state_dir": tmp_path / "b"}), "worker-b")  # rebalance
    finally:
        flowing.set()
        flow.join()
    assert going_on and not any(undelivered)
    second_half = events[half:]
    events = events + going_on
    n_events = len(events)
    expected = exact_windows(events, WINDOW_S)
    try:
        for event in second_half:
            publisher.publish(event)
        assert publisher.flush(30) == 0

        # Panes, and 30 s windows every 10 s (each event in 3), merged from the finalised panes
        # whichever worker finalised them (the rebalance falls inside some of them).
        for size_s, hop_s, expected, per_event in ((WINDOW_S, 0, expected, 1),
                                                   (30, 10, exact_hopping(events, 30, 10), 3)):
            def all_closed():
                closed = [from_redis(w) for w in read_windows(client, limit=5000) if w["state"] == "closed"
                          and (w["window_seconds"], w["hop_seconds"]) == (str(size_s), str(hop_s))]
                return closed if all_counted(closed, per_event * n_events) else None

            try:
                closed = wait_for(f"every {size_s}s window to close", all_closed)
            except TimeoutError as exc:  # say where the events went
                sums = {}
                for w in read_windows(client, limit=5000):
                    if (w["window_seconds"], w["hop_seconds"]) == (str(size_s), str(hop_s)):
                        key = (w["keyset"], w["state"])
                        sums[key] = sums.get(key, 0) + int(w["events"])
                raise AssertionError(f"{exc}: events per (keyset, state) {sums}, counters "
                                     f"{client.hgetall(COUNTERS)}, late {client.hgetall(LATE_EVENTS)}") from None
            # Each window (or per-partition part) once: the first worker to close it wins (SET NX).
            parts = [(window_series(w), int(w["window_start_ms"]), w["source_partition"]) for w in closed]
            assert len(set(parts)) == len(parts)
            redis_windows = add_partials(((window_series(w), int(w["window_start_ms"])), w) for w in closed)
            def written_rollups():  # ClickHouse is written after Redis, from a queue (committer.py)
                rows = []
                for worker in (first, second):
                    columns, found = worker.sql(
                        "SELECT keyset, service, model, model_version, tenant_id, route, source_partition, "
                        "toUnixTimestamp(window_start) * 1000 AS start_ms, events, errors, timeouts, filtered, "
                        "input_tokens, output_tokens, cost_usd, latency_p50_ms, latency_p90_ms, latency_p99_ms, "
                        f"ttft_p95_ms, error_types FROM window_rollups WHERE window_seconds = {size_s} "
                        f"AND hop_seconds = {hop_s}")
                    rows += [dict(zip(columns, r)) for r in found]
                return rows if all_counted(rows, per_event * n_events) else None

            rows = wait_for(f"every {size_s}s window in ClickHouse", written_rollups)
            written = [(window_series(r), int(r["start_ms"]), r["source_partition"]) for r in rows]
            assert len(set(written)) == len(written)  # each row once, across both workers
            rollups = add_partials(((window_series(r), int(r["start_ms"])), r) for r in rows)
            assert redis_windows.keys() == expected.keys()
            assert rollups.keys() == expected.keys()
            for key, exp in expected.items():
                assert_window_matches(key, redis_windows[key], exp)
                assert_window_matches(key, rollups[key], exp)
    finally:
        second.stop()
        first.stop()
