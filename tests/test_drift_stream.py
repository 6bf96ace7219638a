"""Drift on the real stack: a reference profile built from what the worker stored in ClickHouse
(`inferwatch baseline build`), then a shift of prompt length scored pane by pane, alarmed after
`drift_persistence` panes, alerted, and stored in drift_metrics and Redis. Without a built
profile, the worker learns a provisional one from each series' first panes and alarms the same."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import redis
from confluent_kafka import Consumer

from inferwatch.deploy.local_stack import create_topics
from inferwatch.processors.drift.baseline import FEATURES
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec
from inferwatch.producers.publisher import EventPublisher
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.sinks.redis.live_state import read_alerts, read_profiles
from redis_server import RedisServer
from waiting import wait_for
from workers import Worker, write_config

pytestmark = pytest.mark.integration

WINDOW_S = 60
PER_MINUTE = 1_500


def publish(settings, start_ms: int, minutes: int, seed: int, input_scale: float = 1.0) -> list[dict]:
    ts = np.sort(start_ms + np.random.default_rng(seed).integers(0, minutes * WINDOW_S * 1000, minutes * PER_MINUTE))
    events = [{**e, "input_tokens": int(e["input_tokens"] * input_scale)} for e in TrafficModel(seed=seed).events(ts)]
    publisher = EventPublisher(settings)
    for event in events:
        publisher.publish(event)
    assert publisher.flush(60) == 0
    return events


def cli(settings, *args) -> subprocess.CompletedProcess:
    config = settings.state_dir / "cli.toml"
    write_config(settings, config)
    return subprocess.run([sys.executable, "-m", "inferwatch.cli", *args], capture_output=True, text=True,
                          timeout=300, env={"INFERWATCH_CONFIG": str(config), "PATH": "/usr/bin:/bin"})


@pytest.fixture
def redis_server(tmp_path):
    """A redis-server of its own: the profiles and windows of this test reach no other test's worker."""
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def drift_settings(stack, redis_server, tmp_path, **overrides):
    run = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={
        "state_dir": tmp_path, "kafka_bootstrap": stack.resolved_kafka_bootstrap, "redis_url": redis_server.url,
        "clickhouse_dsn": f"chdb://{tmp_path / 'clickhouse'}",
        "events_topic": f"drift-{run}", "dlq_topic": f"drift-{run}.dlq", "feedback_topic": f"drift-{run}.feedback",
        "drift_topic": f"drift-{run}.drift",
        "app_id": f"drift-{run}", "window_seconds": WINDOW_S, "allowed_lateness_seconds": 2.0,
        "partition_idle_seconds": 2.0, "live_update_seconds": 0.5, "longer_windows": [], **overrides,
    })
    create_topics(settings, settings.kafka_bootstrap, progress=lambda _: None)
    return settings


def test_a_prompt_length_shift_is_scored_alarmed_alerted_and_stored(stack, redis_server, tmp_path):
    settings = drift_settings(stack, redis_server, tmp_path)
    client = redis.Redis.from_url(settings.redis_url)
    minute = int(time.time() * 1000) // 60_000 * 60_000
    reference_start = minute - 14 * 60_000

    # 1. Eight minutes of ordinary traffic, stored by a worker; then the reference is built from them.
    first = Worker(settings, "worker-reference")
    try:
        reference = publish(settings, reference_start, 8, seed=21)
        wait_for("the reference events in ClickHouse", lambda: first.sql(
            "SELECT count() FROM inference_events")[1][0][0] == len(reference), 120)
    finally:
        first.stop()
    built = cli(settings, "baseline", "build", "--since", "15m", "--until", "5m")
    assert built.returncode == 0, built.stderr
    profiles = read_profiles(client)
    assert {scope for scope in profiles} == {(e["service"], e["model"]) for e in reference}
    assert all(set(features) == set(FEATURES) for features in profiles.values())

    # 2. A worker that starts with the profiles (read before its first live update) sees prompts
    # four times longer, from the minute after the reference on.
    second = Worker(settings, "worker-drift")
    try:
        shifted_start = reference_start + 8 * 60_000
        publish(settings, shifted_start, 5, seed=22, input_scale=4.0)

        def drifted_rows():
            _, rows = second.sql("SELECT service, model, toUnixTimestamp(window_start) * 1000, statistic, value, "
                                 "threshold, drifted FROM drift_metrics WHERE feature = 'input_tokens'")
            return rows if any(r[6] for r in rows) else None

        rows = wait_for("an input_tokens drift alarm in drift_metrics", drifted_rows, 120)
        # Every shifted pane scores over its threshold (a reference pane the second worker re-read,
        # its messages not committed yet, may be scored too); a pane is an alarm exactly when it
        # is the second or a later one in a row over the threshold of its series and statistic.
        assert all(value > threshold for _, _, start, _, value, threshold, _ in rows if start >= shifted_start)
        by_series = {}
        for service, model, start, statistic, value, threshold, drifted in sorted(rows, key=lambda r: r[2]):
            by_series.setdefault((service, model, statistic), []).append((value > threshold, drifted))
        for panes in by_series.values():
            run = 0
            for over, drifted in panes:
                run = run + 1 if over else 0
                assert drifted == (run >= settings.drift_persistence)
        alerts = wait_for("a drift alert", lambda: [a for a in read_alerts(client) if a["rule"] == "drift"], 60)
        assert "drifted from the reference" in alerts[0]["message"] and "input_tokens" in alerts[0]["message"]
        status = cli(settings, "status", "--drift")
        assert status.returncode == 0, status.stderr
        assert "input_tokens" in status.stdout and "alarm" in status.stdout
    finally:
        second.stop()


def test_without_a_built_profile_the_worker_learns_one_from_the_first_panes_and_alarms(stack, redis_server, tmp_path):
    settings = drift_settings(stack, redis_server, tmp_path, drift_reference_panes=5)
    client = redis.Redis.from_url(settings.redis_url)
    start = int(time.time() * 1000) // 60_000 * 60_000 - 12 * 60_000
    worker = Worker(settings, "worker-learning")
    try:
        # Seven ordinary minutes (five to learn from), then prompts four times longer.
        ordinary = publish(settings, start, 7, seed=31)
        publish(settings, start + 7 * 60_000, 4, seed=32, input_scale=4.0)
        profiles = wait_for("a provisional profile of every model in Redis",
                            lambda: (p := read_profiles(client)) and len(p) == len({(e["service"], e["model"])
                                                                                   for e in ordinary}) and p, 120)
        for features in profiles.values():
            assert {"input_tokens", "output_tokens", "latency_ms"} <= set(features)
            assert all(p.provisional and "first 5 panes" in p.source for p in features.values())
            assert all(p.threshold("js", WINDOW_S).windows == 5 for p in features.values())
        shown = cli(settings, "baseline", "show")
        assert shown.returncode == 0, shown.stderr
        assert "provisional" in shown.stdout and "learned from its first 5 panes" in shown.stdout

        def alarmed():
            _, rows = worker.sql("SELECT DISTINCT model FROM drift_metrics WHERE feature = 'input_tokens' AND drifted")
            return rows if len(rows) == len(profiles) else None

        wait_for("an input_tokens drift alarm of every model", alarmed, 120)
        # Each alarm was published once, on the drift topic, as a DriftEvent: the first pane of the run.
        consumer = Consumer(settings.kafka_config(**{"group.id": f"reader-{uuid.uuid4().hex[:6]}",
                                                     "auto.offset.reset": "earliest"}))
        consumer.subscribe([settings.drift_topic])
        codec = EventCodec(local_schema_ids())
        published = []

        def alarms_published():
            for message in consumer.consume(500, timeout=0.5):
                published.append(codec.decode_drift(message.value()))
            alarms = {(r["model"], r["statistic"]) for r in published
                      if r["feature"] == "input_tokens" and r["detector"] == "reference_bins"}
            return alarms if len(alarms) == 2 * len(profiles) else None

        try:
            wait_for("the input_tokens alarms on the drift topic", alarms_published, 60)
        finally:
            consumer.close()
        _, rows = worker.sql("SELECT model, statistic, toUnixTimestamp(window_start) * 1000, value FROM drift_metrics "
                             "WHERE feature = 'input_tokens' AND drifted ORDER BY window_start")
        first_alarm = {}
        for model, statistic, window_start, value in rows:
            first_alarm.setdefault((model, statistic), (window_start, value))
        for record in (r for r in published if r["feature"] == "input_tokens" and r["detector"] == "reference_bins"):
            assert (record["event_time"], record["value"]) == first_alarm[record["model"], record["statistic"]]
            assert record["threshold"] < record["value"] and record["reference"] is None
        _, early = worker.sql("SELECT count() FROM drift_metrics WHERE feature = 'input_tokens' AND drifted "
                              f"AND window_start < toDateTime({(start + 7 * 60_000) // 1000})")
        assert early == [[0]]  # no alarm before the shift
    finally:
        worker.stop()
