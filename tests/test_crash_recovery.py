"""A worker killed (SIGKILL) after its rows reached ClickHouse but before their offsets were
committed loses nothing and, read through FINAL, duplicates nothing once restarted."""

import time
import uuid

import numpy as np
import pytest
import redis

from inferwatch.deploy.local_stack import create_topics
from inferwatch.producers.publisher import EventPublisher
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.query import query_worker
from workers import Worker, wait_for

pytestmark = pytest.mark.integration
N_EVENTS = 5_000


def test_killed_between_insert_and_commit_loses_and_duplicates_nothing(stack, tmp_path):
    run = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={
        "state_dir": tmp_path / "crash", "app_id": f"crash-{run}",
        # Topics of its own: other tests read the shared ones from the beginning.
        "events_topic": f"crash-{run}", "dlq_topic": f"crash-{run}.dlq", "feedback_topic": f"crash-{run}.feedback",
        "kafka_bootstrap": stack.resolved_kafka_bootstrap,
        "redis_url": stack.resolved_redis_url.rsplit("/", 1)[0] + "/4",
        # Windows stay open for minutes: offsets stay uncommitted while the rows are already written.
        "allowed_lateness_seconds": 600.0, "clickhouse_batch_seconds": 0.2, "extra_windows": [],
        # The killed worker's partitions move to the restarted one once its session expires.
        "worker_session_timeout_seconds": 10.0,
    })
    create_topics(settings, settings.kafka_bootstrap, progress=lambda _: None)
    redis.Redis.from_url(settings.redis_url).flushdb()
    events = TrafficModel(seed=12).events(np.full(N_EVENTS, int(time.time() * 1000)))
    for event in events:
        event["attributes"] = {"crash_run": run}
    mine = f"attributes['crash_run'] = '{run}'"

    first = Worker(settings, "crash-1")
    publisher = EventPublisher(settings)
    for event in events:
        publisher.publish(event)
    assert publisher.flush(30) == 0
    wait_for("the rows", lambda: first.sql(f"SELECT count() FROM inference_events WHERE {mine}")[1][0][0] >= N_EVENTS)
    first.process.kill()  # no shutdown, no commit
    first.process.wait(30)

    second = Worker(settings, "crash-2")
    try:
        # The restarted worker re-reads the uncommitted messages and writes their rows again...
        wait_for("the re-read rows", lambda: second.sql(
            f"SELECT count() FROM inference_events WHERE {mine}")[1][0][0] >= 2 * N_EVENTS)
        # ...which the table's dedup key collapses: every event once, none lost.
        _, rows = query_worker(second.web_url, f"SELECT count(), uniqExact(event_id) FROM inference_events FINAL WHERE {mine}")
        assert rows[0] == [N_EVENTS, N_EVENTS]
    finally:
        second.stop()
