"""Chaos on the real stack: a fault while events flow, then nothing lost and nothing counted twice.

Each case runs a real worker on topics of its own with a redis-server of its own, breaks one
part, mends it, and checks against what it produced: every event once in ClickHouse (`FINAL`),
every event once in the Redis windows, and every closed 1-pane window of the `model` key set once
in `window_rollups` with exactly its events. The time from mending to everything counted is
recorded in RECOVERY_S and printed at the end of the run (conftest.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections import Counter

import numpy as np
import pytest
import redis

from inferwatch.deploy import local_stack
from inferwatch.processes import stop_process
from inferwatch.producers.publisher import EventPublisher
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.settings import Settings
from inferwatch.sinks.redis.live_state import COUNTERS, read_windows
from redis_server import RedisServer
from waiting import wait_for
from workers import Worker

pytestmark = pytest.mark.integration
WINDOW_S = 10
N_HALF = 3_000
OUTAGE_S = 30.0
RECOVERY_S: dict[str, float] = {}  # case -> seconds from the fault's end to everything counted


class Case:
    """One chaos case: its settings, worker, and the events it sent."""

    def __init__(self, name: str, settings: Settings):
        self.name, self.settings = name, settings
        self.events: list[dict] = []
        self.worker = Worker(settings, f"worker-{name}")
        self.redis = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2)

    def publish(self, n: int) -> None:
        """n events of the last second, for this case's services only. While the stream was quiet
        event time followed the wall clock (watermark.py); events this recent stay on time as
        long as they arrive within the lateness (10 s here), however long the quiet lasted."""
        now_ms = int(time.time() * 1000)
        events = TrafficModel(seed=len(self.events)).events(np.linspace(now_ms - 1_000, now_ms, n).astype(np.int64))
        for event in events:
            event["service"] = f"{self.name}-{event['service']}"
        publisher = EventPublisher(self.settings)
        for event in events:
            publisher.publish(event)
        assert publisher.flush(120) == 0
        self.events += events

    def in_windows(self) -> int:
        """Events in this case's 1-pane windows of the model key set in Redis (open and closed)."""
        return sum(int(w["events"]) for w in read_windows(self.redis, limit=100_000)
                   if w["keyset"] == "model" and w["window_seconds"] == str(WINDOW_S))

    def wait_windows(self, n: int, timeout_s: float = 180) -> None:
        """Until the Redis windows hold n events; a timeout says where the others went."""
        try:
            wait_for(f"{n} events in the Redis windows", lambda: self.in_windows() == n, timeout_s)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: {self.in_windows()} there, counters {self.redis.hgetall(COUNTERS)}") from None

    def in_clickhouse(self) -> tuple[int, int]:
        _, rows = self.worker.sql("SELECT count(), uniqExact(event_id) FROM inference_events FINAL")
        return tuple(rows[0])

    def wait_all_counted(self, since: float) -> None:
        n = len(self.events)
        self.wait_windows(n)
        wait_for("every event in ClickHouse", lambda: self.in_clickhouse() == (n, n))
        RECOVERY_S[self.name] = round(time.monotonic() - since, 1)

    def check_rollups(self) -> None:
        """Once the stream is quiet every pane closes: each exactly once, with exactly its events."""
        expected = Counter((e["service"], e["model"], e["model_version"], e["ts"] - e["ts"] % (WINDOW_S * 1000))
                           for e in self.events)
        query = ("SELECT service, model, model_version, toUnixTimestamp(window_start) * 1000, events "
                 f"FROM window_rollups WHERE keyset = 'model' AND window_seconds = {WINDOW_S}")

        def rollups():
            return sorted(tuple(r) for r in self.worker.sql(query)[1])
        wait_for("every pane in window_rollups", lambda: sum(r[4] for r in rollups()) >= len(self.events))
        assert rollups() == sorted((*key, n) for key, n in expected.items())

    def recovered(self, since: float) -> None:
        """Everything counted (recording the time since `since`), the worker up, the panes exact."""
        self.wait_all_counted(since)
        assert self.worker.process.poll() is None
        self.check_rollups()

    def __enter__(self) -> Case:
        return self

    def __exit__(self, *exc_info) -> None:
        if self.worker.process.poll() is None:
            self.worker.stop()


def case_settings(stack: Settings, name: str, tmp_path, redis_url: str) -> Settings:
    run = f"{name}-{uuid.uuid4().hex[:6]}"
    settings = stack.model_copy(update={
        "state_dir": tmp_path / name, "events_topic": f"{run}", "dlq_topic": f"{run}.dlq",
        "feedback_topic": f"{run}.feedback", "app_id": run, "redis_url": redis_url,
        "kafka_bootstrap": stack.resolved_kafka_bootstrap, "window_seconds": WINDOW_S, "longer_windows": [],
        "allowed_lateness_seconds": 10.0, "partition_idle_seconds": 2.0, "live_update_seconds": 0.5,
        "clickhouse_retry_max_seconds": 2.0,
    })
    local_stack.create_topics(settings, settings.kafka_bootstrap, progress=lambda _: None)
    return settings


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def hold_fault_until(started: float) -> None:
    """The fault lasts OUTAGE_S: what is timed here is the outage itself, not a wait for a result."""
    time.sleep(max(0.0, started + OUTAGE_S - time.monotonic()))


def test_redis_stopped_30s(stack, tmp_path, redis_server):
    with Case("redis", case_settings(stack, "redis", tmp_path, redis_server.url)) as case:
        case.publish(N_HALF)
        case.wait_windows(N_HALF)
        redis_server.stop()
        down_at = time.monotonic()
        case.publish(N_HALF)
        # The worker goes on consuming: the raw log reaches ClickHouse while Redis is down.
        wait_for("the second half in ClickHouse", lambda: case.in_clickhouse() == (2 * N_HALF, 2 * N_HALF), OUTAGE_S)
        hold_fault_until(down_at)
        redis_server.start()
        case.recovered(since=time.monotonic())


def test_clickhouse_failing_30s(stack, tmp_path, redis_server):
    with Case("clickhouse", case_settings(stack, "clickhouse", tmp_path, redis_server.url)) as case:
        case.publish(N_HALF)
        wait_for("the first half in ClickHouse", lambda: case.in_clickhouse() == (N_HALF, N_HALF))
        for table in ("inference_events", "window_rollups"):  # every insert into them now fails
            case.worker.sql(f"DETACH TABLE {table}")
        down_at = time.monotonic()
        case.publish(N_HALF)
        # Live windows and alerts do not wait for ClickHouse.
        case.wait_windows(2 * N_HALF, OUTAGE_S)
        hold_fault_until(down_at)
        for table in ("inference_events", "window_rollups"):
            case.worker.sql(f"ATTACH TABLE {table}")
        case.recovered(since=time.monotonic())


def test_worker_killed_mid_batch(stack, tmp_path, redis_server):
    with Case("sigkill", case_settings(stack, "sigkill", tmp_path, redis_server.url)) as case:
        case.publish(2 * N_HALF)
        wait_for("the worker mid-stream", lambda: case.in_windows() > 0)
        os.kill(case.worker.process.pid, signal.SIGKILL)
        case.worker.process.wait()
        killed_at = time.monotonic()
        case.worker = Worker(case.settings, "worker-sigkill-restarted")
        case.recovered(since=killed_at)


def test_decoder_process_killed(stack, tmp_path, redis_server):
    with Case("decoder", case_settings(stack, "decoder", tmp_path, redis_server.url)) as case:
        case.publish(N_HALF)
        case.wait_windows(N_HALF)
        children = subprocess.run(["pgrep", "-f", "-P", str(case.worker.process.pid), "multiprocessing.spawn"],
                                  capture_output=True, text=True).stdout.split()
        assert children, "the worker has no decoder processes"
        os.kill(int(children[0]), signal.SIGKILL)
        killed_at = time.monotonic()
        case.publish(N_HALF)
        case.recovered(since=killed_at)


def test_broker_stopped_30s(tmp_path):
    own = Settings(state_dir=tmp_path / "stack")  # this case stops the broker: a stack of its own
    local_stack.up(own, progress=lambda _: None)
    try:
        with Case("broker", case_settings(own, "broker", tmp_path, own.resolved_redis_url)) as case:
            case.publish(N_HALF)
            case.wait_windows(N_HALF)
            stop_process(own, "kafka")
            down_at = time.monotonic()
            hold_fault_until(down_at)
            local_stack.up(own, progress=lambda _: None)  # the same ports again
            back_at = time.monotonic()
            case.publish(N_HALF)
            case.recovered(since=back_at)
    finally:
        local_stack.down(own, progress=lambda _: None)
