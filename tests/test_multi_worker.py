"""Two workers on a 4-partition topic, the second joining mid-stream (a rebalance), produce the
windows one worker would: every window exact, and written once across both."""

import time
import uuid

import numpy as np
import pytest
import redis

from exact import exact_windows
from inferwatch.deploy.local_stack import create_topics
from inferwatch.producers.publisher import EventPublisher
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.sinks.redis.live_state import read_windows
from workers import Worker, wait_for

pytestmark = pytest.mark.integration
WINDOW_S = 60
N_EVENTS = 12_000


def test_two_workers_and_a_rebalance_give_each_window_once_and_exact(stack, tmp_path):
    run = uuid.uuid4().hex[:8]
    base = stack.model_copy(update={
        "events_topic": f"mw-{run}", "dlq_topic": f"mw-{run}.dlq", "feedback_topic": f"mw-{run}.feedback",
        "app_id": f"mw-{run}", "kafka_bootstrap": stack.resolved_kafka_bootstrap,
        # A Redis database of its own: no other test's windows in the way.
        "redis_url": stack.resolved_redis_url.rsplit("/", 1)[0] + "/3",
        "window_seconds": WINDOW_S, "allowed_lateness_seconds": 2.0, "partition_idle_seconds": 2.0,
        "live_update_seconds": 0.5, "extra_windows": [],
    })
    create_topics(base, base.kafka_bootstrap, progress=lambda _: None)
    client = redis.Redis.from_url(base.redis_url)
    client.flushdb()

    window_ms = WINDOW_S * 1000
    t0 = int(time.time() * 1000 - 20 * window_ms) // window_ms * window_ms
    ts = np.sort(t0 + np.random.default_rng(5).integers(0, 4 * window_ms, N_EVENTS))
    events = TrafficModel(seed=5).events(ts)
    expected = exact_windows(events, WINDOW_S)

    first = Worker(base.model_copy(update={"state_dir": tmp_path / "a"}), "worker-a")
    publisher = EventPublisher(base)
    for event in events[: N_EVENTS // 2]:
        publisher.publish(event)
    assert publisher.flush(30) == 0
    second = Worker(base.model_copy(update={"state_dir": tmp_path / "b"}), "worker-b")  # rebalance
    try:
        for event in events[N_EVENTS // 2:]:
            publisher.publish(event)
        assert publisher.flush(30) == 0

        def all_closed():
            closed = [w for w in read_windows(client, limit=1000) if w["state"] == "closed"]
            return closed if len(closed) >= len(expected) else None

        redis_windows = {((w["service"], w["model"], w["model_version"]), int(w["window_start_ms"])): w
                         for w in wait_for("every window to close", all_closed)}
        rows = []
        for worker in (first, second):
            _, found = worker.sql("SELECT service, model, model_version, toUnixTimestamp(window_start) * 1000, "
                                  "events, errors, input_tokens FROM window_rollups")
            rows += found
        written = [((r[0], r[1], r[2]), int(r[3])) for r in rows]
        assert sorted(written) == sorted(expected)  # each window once, across both workers
        for (key, start), r in zip(written, rows):
            assert (r[4], r[5], r[6]) == (expected[(key, start)]["events"], expected[(key, start)]["errors"],
                                          expected[(key, start)]["input_tokens"])
        assert redis_windows.keys() == expected.keys()
        for key, exp in expected.items():
            assert int(redis_windows[key]["events"]) == exp["events"]
            assert float(redis_windows[key]["cost_usd"]) == pytest.approx(exp["cost_usd"], rel=1e-9)
            assert float(redis_windows[key]["latency_p99_ms"]) == pytest.approx(exp["p99"], rel=0.01)
    finally:
        second.stop()
        first.stop()
