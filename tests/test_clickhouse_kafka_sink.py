"""The Kafka -> ClickHouse sink on the real broker and Redis, on every configured backend.

Each test publishes into topics of its own, runs the sink (its own consumer group) in this
process, and waits, polling, until the sink's stats say the rows are written.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager

import numpy as np
import pytest
import redis
from confluent_kafka import Consumer

from clickhouse_backends import dsn, server_dsn  # noqa: F401 (fixtures)
from inferwatch.deploy.local_stack import create_topics
from inferwatch.producers.publisher import EventPublisher
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.schemas.registry import schema_ids
from inferwatch.schemas.wire import EventCodec
from inferwatch.sinks.clickhouse.avro_container import RecordBlock, object_container
from inferwatch.sinks.clickhouse.clickhouse_thread import ClickHouseThread
from inferwatch.sinks.clickhouse.event_intake import message_record
from inferwatch.sinks.clickhouse.kafka_sink import EVENTS, ClickHouseEventSink
from inferwatch.sinks.redis.live_state import SINK_STATS
from waiting import wait_for

pytestmark = pytest.mark.integration
N_EVENTS = 6_000


@pytest.fixture
def settings(stack, dsn):
    run = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={
        "events_topic": f"sink-{run}", "dlq_topic": f"sink-{run}.dlq", "feedback_topic": f"sink-{run}.fb",
        "app_id": f"sink-{run}", "clickhouse_dsn": dsn, "clickhouse_batch_seconds": 0.3,
        "clickhouse_batch_rows": 2_000, "clickhouse_retry_max_seconds": 0.5,
        "kafka_bootstrap": stack.resolved_kafka_bootstrap, "redis_url": stack.resolved_redis_url,
    })
    create_topics(settings, settings.kafka_bootstrap, progress=lambda _: None)
    return settings


@pytest.fixture
def clickhouse(settings):
    thread = ClickHouseThread(settings)
    for table in ("inference_events", "feedback"):  # a server database is shared by the session
        thread.submit(thread.tables.query, f"TRUNCATE TABLE {table}").result()
    yield thread
    thread.close()


def publish(settings, events, feedback=(), raw=()):
    publisher = EventPublisher(settings)
    for event in events:
        publisher.publish(event)
    for record in feedback:
        publisher.producer.produce(settings.feedback_topic, publisher.codec.encode_feedback(record))
    for value in raw:
        publisher.send_raw(value, key=b"bad")
    assert publisher.flush(30) == 0


@contextmanager
def running_sink(settings, clickhouse):
    sink = ClickHouseEventSink(settings, clickhouse)
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()


def sql(clickhouse, query):
    return clickhouse.submit(clickhouse.tables.query, query).result().rows


def codec_for(settings):
    return EventCodec(schema_ids(settings.schema_registry_url))


def make_events(n, seed=5):
    events = TrafficModel(seed=seed).events(np.full(n, int(time.time() * 1000)))
    events[0]["resources"] = {"gpu_util": 0.5, "gpu_mem_mb": None, "cpu_util": 0.25, "mem_mb": 2048.0}
    events[0]["quality_scores"] = {"rouge_l": 0.75}
    events[0]["attributes"] = {"region": "eu"}
    return events


def feedback_records(n):
    return [{"feedback_id": str(uuid.uuid4()), "ts": int(time.time() * 1000), "request_id": f"r{i}",
             "service": "chat-api", "model": None, "source": "USER", "thumbs": 1 if i % 2 else -1,
             "rating": None, "eval_scores": {"faithfulness": i / n}, "hallucination": None, "judge": None,
             "comment": None, "user_id": None, "attributes": {}} for i in range(n)]


def test_rows_reach_clickhouse_as_the_avro_said(settings, clickhouse):
    events = make_events(N_EVENTS)
    publish(settings, events, feedback_records(40))
    with running_sink(settings, clickhouse) as sink:
        wait_for("all rows", lambda: sink.stats.rows_written >= N_EVENTS and sink.stats.feedback_rows_written >= 40)
    assert sql(clickhouse, "SELECT count(), uniqExact(event_id), sum(input_tokens) FROM inference_events FINAL") == [
        (N_EVENTS, N_EVENTS, sum(e["input_tokens"] for e in events))]
    first = events[0]
    (row,) = sql(clickhouse, "SELECT toString(event_id), toUnixTimestamp64Milli(ts), status, latency_ms, gpu_util, "
                             "gpu_mem_mb, cpu_util, mem_mb, quality_scores, attributes, cost_usd "
                             f"FROM inference_events WHERE event_id = '{first['event_id']}'")
    assert row == (first["event_id"], first["ts"], first["status"], first["latency_ms"], 0.5, None, 0.25, 2048.0,
                   {"rouge_l": 0.75}, {"region": "eu"}, first["cost_usd"])
    assert sql(clickhouse, "SELECT count() FROM inference_events WHERE gpu_util IS NULL") == [(N_EVENTS - 1,)]
    assert sql(clickhouse, "SELECT count(), sum(thumbs), any(source) FROM feedback FINAL") == [(40, 0, "USER")]


def test_replaying_the_same_range_leaves_counts_unchanged(settings, clickhouse):
    events = make_events(N_EVENTS)
    publish(settings, events)
    with running_sink(settings, clickhouse) as sink:
        wait_for("all rows", lambda: sink.stats.rows_written >= N_EVENTS)
    counts = "SELECT count(), uniqExact(event_id) FROM inference_events FINAL"
    assert sql(clickhouse, counts) == [(N_EVENTS, N_EVENTS)]
    # A new consumer group reads the same Kafka range from the start and inserts it all again.
    replay = settings.model_copy(update={"app_id": settings.app_id + "-replay"})
    with running_sink(replay, clickhouse) as sink:
        wait_for("the replayed rows", lambda: sink.stats.rows_written >= N_EVENTS)
    assert sql(clickhouse, counts) == [(N_EVENTS, N_EVENTS)]


def test_a_resent_batch_is_dropped_by_its_dedup_token(settings, clickhouse):
    events = make_events(100)
    now_ms = int(time.time() * 1000)
    records = [message_record(memoryview(codec_for(settings).encode_event(e))[5:], False, now_ms) for e in events]
    container = object_container(EVENTS.schema, [RecordBlock(1, r) for r in records])
    for _ in range(2):
        clickhouse.submit(clickhouse.tables.insert_avro, EVENTS.name, EVENTS.columns, container, "t-1").result()
    assert sql(clickhouse, "SELECT count() FROM inference_events") == [(100,)]  # without FINAL


class FailingInserts:
    """The real tables, whose Avro inserts fail as if ClickHouse were away while `away` is set."""

    def __init__(self, clickhouse):
        self.away = True
        self._real = clickhouse.tables

    def insert_avro(self, *args):
        if self.away:
            raise ConnectionError("ClickHouse is away")
        return self._real.insert_avro(*args)


def test_clickhouse_failing_backs_off_commits_nothing_and_then_writes_everything(settings, clickhouse, monkeypatch):
    events = make_events(N_EVENTS)
    publish(settings, events)
    failing = FailingInserts(clickhouse)
    monkeypatch.setattr(type(clickhouse), "tables", property(lambda self: failing))
    stats = redis.Redis.from_url(settings.redis_url)
    stats.delete(SINK_STATS)
    with running_sink(settings, clickhouse) as sink:
        wait_for("the failures", lambda: sink.stats.failed_inserts >= 2)
        # (b"0", truthy, until the sink's first stats after its assignment)
        wait_for("the backlog in Redis", lambda: int(stats.hget(SINK_STATS, "lag_messages") or 0) > 0)
        assert b"ClickHouse is away" in stats.hget(SINK_STATS, "last_error")
        assert (sink.stats.rows_written, sink.stats.poison_messages) == (0, 0)  # an outage is no poison
        failing.away = False
        wait_for("all rows", lambda: sink.stats.rows_written >= N_EVENTS)
        wait_for("no lag", lambda: stats.hget(SINK_STATS, "lag_messages") == b"0")
    monkeypatch.undo()
    assert sql(clickhouse, "SELECT count(), uniqExact(event_id) FROM inference_events FINAL") == [(N_EVENTS, N_EVENTS)]


def test_malformed_messages_are_skipped_and_counted(settings, clickhouse):
    codec = codec_for(settings)
    events = make_events(500)
    truncated = codec.encode_batch(make_events(10, seed=6))[:-3]
    malformed = [b'{"not": "avro"}', b"\x00\x00", b"\x00\x00\x00\x03\xe7" + b"x" * 20, truncated]
    publish(settings, events[:250], raw=malformed)
    publish(settings, events[250:])
    with running_sink(settings, clickhouse) as sink:
        wait_for("all good rows", lambda: sink.stats.rows_written >= 500)
        assert sink.stats.skipped_messages == len(malformed)
    assert sql(clickhouse, "SELECT count() FROM inference_events FINAL") == [(500,)]


def read_topic(settings, topic, n, timeout_s=60):
    consumer = Consumer(settings.kafka_config(**{"group.id": f"read-{uuid.uuid4().hex[:6]}",
                                                 "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    got, deadline = [], time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            got.append(message)
    consumer.close()
    return got


def test_a_message_clickhouse_refuses_is_dead_lettered_and_the_rest_inserted(settings, clickhouse):
    """Before: the sink retried the batch holding it forever, partitions paused: the full log stopped."""
    # A real refusal: ClickHouse checks this constraint on every row the intake view writes.
    sql(clickhouse, "ALTER TABLE inference_events ADD CONSTRAINT no_poison CHECK model != 'poison-model'")
    try:
        good = make_events(N_EVENTS)
        poison = {**make_events(1, seed=8)[0], "model": "poison-model"}
        publish(settings, good[:N_EVENTS // 2])
        publish(settings, [poison])  # a message of its own: the publisher batches per (service, model)
        publish(settings, good[N_EVENTS // 2:])
        with running_sink(settings, clickhouse) as sink:
            wait_for("the good rows", lambda: sink.stats.rows_written >= N_EVENTS and sink.stats.poison_messages)
            assert sink.stats.poison_messages == 1
        assert sql(clickhouse, "SELECT count(), uniqExact(event_id) FROM inference_events FINAL") == [
            (N_EVENTS, N_EVENTS)]
        [dead] = read_topic(settings, settings.dlq_topic, 1)
        headers = dict(dead.headers())
        assert codec_for(settings).decode(dead.value()) == [poison]
        assert b"ClickHouse refused it" in headers["inferwatch.reason"]
        assert headers["inferwatch.source"].decode().startswith(f"{settings.events_topic}/")
        assert sql(clickhouse, "SELECT count() FROM dead_letters WHERE reason LIKE 'ClickHouse refused it%'") == [(1,)]
    finally:
        sql(clickhouse, "ALTER TABLE inference_events DROP CONSTRAINT no_poison")
