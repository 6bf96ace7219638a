"""A sink killed (SIGKILL) between insert and commit loses and duplicates nothing after restart."""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from inferwatch.deploy.local_stack import create_topics
from inferwatch.sinks.clickhouse.tables import ClickHouseTables
from inferwatch.sinks.redis.live_state import SINK_STATS
from test_clickhouse_kafka_sink import make_events, publish
from waiting import wait_for
from workers import write_config

pytestmark = pytest.mark.integration
N_EVENTS = 5_000
SINK_PROCESS = Path(__file__).with_name("clickhouse_sink_process.py")


def test_sink_killed_between_insert_and_commit_loses_and_duplicates_nothing(stack, tmp_path):
    run = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={
        "state_dir": tmp_path, "app_id": f"sink-crash-{run}",
        "events_topic": f"sink-crash-{run}", "dlq_topic": f"sink-crash-{run}.dlq",
        "feedback_topic": f"sink-crash-{run}.fb",
        "kafka_bootstrap": stack.resolved_kafka_bootstrap,
        "redis_url": stack.resolved_redis_url.rsplit("/", 1)[0] + "/5",
        # One batch holds everything: the killed process inserted all rows, committed nothing.
        "clickhouse_batch_rows": 2 * N_EVENTS, "clickhouse_batch_seconds": 2.0,
        "worker_session_timeout_seconds": 6.0,
    })
    create_topics(settings, settings.kafka_bootstrap, progress=lambda _: None)
    stats = redis.Redis.from_url(settings.redis_url)
    stats.delete(SINK_STATS)
    config = tmp_path / "sink.toml"
    write_config(settings, config)
    publish(settings, make_events(N_EVENTS))

    killed = subprocess.run([sys.executable, str(SINK_PROCESS), str(config), "--kill-before-commit"], timeout=120)
    assert killed.returncode == -9
    with ClickHouseTables(settings.resolved_clickhouse_dsn) as sink:
        assert sink.query("SELECT count() FROM inference_events").rows == [(N_EVENTS,)]  # inserted...
    # ...and uncommitted: the restarted sink reads and inserts the same messages again.
    restarted = subprocess.Popen([sys.executable, str(SINK_PROCESS), str(config)])
    try:
        wait_for("the re-read rows", lambda: int(stats.hget(SINK_STATS, "rows_written") or 0) >= N_EVENTS)
        wait_for("the commit", lambda: stats.hget(SINK_STATS, "lag_messages") == b"0")
    finally:
        restarted.terminate()
        assert restarted.wait(60) == 0
    with ClickHouseTables(settings.resolved_clickhouse_dsn) as sink:
        assert sink.query("SELECT count(), uniqExact(event_id) FROM inference_events FINAL").rows == [(N_EVENTS, N_EVENTS)]
