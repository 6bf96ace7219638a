"""End to end on the real stack: publisher -> Kafka -> Faust worker -> Redis + ClickHouse (chdb).

Produces N events with known content plus K malformed messages, then checks that exactly the N
events reach ClickHouse, that every window in Redis and in ClickHouse matches an exact
computation over the produced events, and that the malformed messages land in the dead-letter
topic with their reasons while the worker keeps going.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest
import redis
from confluent_kafka import Consumer

from inferwatch.deploy.local_stack import create_topics
from inferwatch.producers.publisher import EventPublisher
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.query import query_worker
from inferwatch.sinks.redis.live_state import COUNTERS, read_windows
from exact import add_partials, all_counted, assert_window_matches, exact_windows, from_redis, window_series
from workers import Worker, wait_for
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec

pytestmark = pytest.mark.integration

N_EVENTS = 20_000
WINDOW_S = 60
SPAN_WINDOWS = 3
MALFORMED = {
    b'{"not": "avro"}': "not Confluent-framed: magic byte",
    b"\x00\x00": "not Confluent-framed",
    b"\x00\x00\x00\x03\xe7" + b"x" * 20: "unknown schema id 999",
    EventCodec(local_schema_ids()).encode_batch(
        TrafficModel(seed=1).events(np.array([1_700_000_000_000]))
    )[:-3]: "undecodable Avro body",
}
SINGLE_EVENT_MESSAGES = 200
DEADLINE_S = 180


@pytest.fixture(scope="module")
def pipeline_settings(stack):
    run = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={
        # Topics of its own: exactly the events this test produces, whatever ran before.
        "events_topic": f"it-{run}", "dlq_topic": f"it-{run}.dlq", "feedback_topic": f"it-{run}.feedback",
        "window_seconds": WINDOW_S,
        "allowed_lateness_seconds": 2.0,
        "partition_idle_seconds": 2.0,
        "live_update_seconds": 0.5,
        "app_id": f"it-{run}",
    })
    create_topics(settings, stack.resolved_kafka_bootstrap, progress=lambda _: None)
    return settings


@pytest.fixture(scope="module")
def worker(pipeline_settings):
    running = Worker(pipeline_settings, "worker-it")
    yield running.process, running.web_url, running.log_path
    running.stop()


@pytest.fixture(scope="module")
def produced(pipeline_settings, worker):
    """Publish N events over SPAN_WINDOWS windows of the past, malformed messages half-way."""
    window_ms = WINDOW_S * 1000
    t0 = int(time.time() * 1000 - 10 * window_ms) // window_ms * window_ms
    rng = np.random.default_rng(11)
    ts = np.sort(t0 + rng.integers(0, SPAN_WINDOWS * window_ms, N_EVENTS))
    events = TrafficModel(seed=11).events(ts)
    publisher = EventPublisher(pipeline_settings)
    # The earliest events come as single-event messages, as a third-party producer sends them;
    # same key as the publisher's batches, so each series stays in order within its partition.
    for event in events[:SINGLE_EVENT_MESSAGES]:
        publisher.send_raw(publisher.codec.encode_event(event), key=f"{event['service']}|{event['model']}".encode())
    for i, event in enumerate(events[SINGLE_EVENT_MESSAGES:]):
        publisher.publish(event)
        if i == N_EVENTS // 2:
            for value in MALFORMED:
                publisher.send_raw(value, key=b"bad")
        if i % 1000 == 0:
            publisher.poll()
    assert publisher.flush(60) == 0
    assert publisher.stats.events_failed == 0
    return events


def test_every_event_reaches_clickhouse_exactly_once(worker, produced):
    _, web_url, _ = worker
    wait_for(f"{N_EVENTS} rows", lambda: query_worker(web_url, "SELECT count() FROM inference_events")[1][0][0] >= N_EVENTS)
    _, rows = query_worker(web_url, "SELECT count(), uniqExact(event_id) FROM inference_events")
    assert rows[0] == [N_EVENTS, N_EVENTS]
    _, ids = query_worker(web_url, "SELECT toString(event_id) FROM inference_events")
    assert {r[0] for r in ids} == {e["event_id"] for e in produced}


def test_windows_in_redis_and_clickhouse_match_exact_computation(pipeline_settings, worker, produced):
    _, web_url, _ = worker
    expected = exact_windows(produced, WINDOW_S)
    client = redis.Redis.from_url(pipeline_settings.resolved_redis_url)

    def closed_panes():
        windows = [from_redis(w) for w in read_windows(client, limit=2000)
                   if w["state"] == "closed" and w["window_seconds"] == str(WINDOW_S) and w["hop_seconds"] == "0"]
        return windows if all_counted(windows, N_EVENTS) else None

    redis_windows = add_partials(
        ((window_series(w), int(w["window_start_ms"])), w) for w in wait_for("all windows to close in Redis", closed_panes)
    )
    columns, rows = query_worker(
        web_url,
        "SELECT keyset, service, model, model_version, tenant_id, route, "
        "toUnixTimestamp(window_start) * 1000 AS start_ms, events, errors, timeouts, filtered, input_tokens, "
        "output_tokens, cost_usd, latency_p50_ms, latency_p90_ms, latency_p99_ms, latency_max_ms, ttft_p95_ms, "
        f"error_types FROM window_rollups WHERE window_seconds = {WINDOW_S} AND hop_seconds = 0",
    )
    rollups = add_partials(((window_series(row), int(row["start_ms"])), row)
                           for row in (dict(zip(columns, r)) for r in rows))
    assert {key.keyset for key, _ in expected} == {"model", "tenant", "route"}
    assert redis_windows.keys() == expected.keys()
    assert rollups.keys() == expected.keys()
    for key, exp in expected.items():
        for source in (redis_windows[key], rollups[key]):
            # Percentiles: the sketch's documented bound, 1% relative error on the exact element at that rank.
            assert_window_matches(key, source, exp)
            if source.get("latency_max_ms") is not None:
                assert float(source["latency_max_ms"]) == pytest.approx(exp["max"], rel=1e-12)
    assert int(client.hget(COUNTERS, "events")) == N_EVENTS
    assert int(client.hget(COUNTERS, "late_events") or 0) == 0


def test_malformed_messages_go_to_dead_letters_and_worker_keeps_going(pipeline_settings, worker, produced):
    process, web_url, _ = worker
    consumer = Consumer(pipeline_settings.kafka_config(**{
        "group.id": f"dlq-check-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest",
    }))
    consumer.subscribe([pipeline_settings.dlq_topic])
    dead = []
    deadline = time.monotonic() + DEADLINE_S
    while len(dead) < len(MALFORMED) and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            dead.append(message)
    consumer.close()
    assert len(dead) == len(MALFORMED)
    for message in dead:
        headers = dict(message.headers())
        assert MALFORMED[message.value()] in headers["inferwatch.reason"].decode()
        assert headers["inferwatch.source"].decode().startswith(pipeline_settings.events_topic + "/")
    _, rows = query_worker(web_url, "SELECT count() FROM dead_letters")
    assert rows[0][0] == len(MALFORMED)
    # Events published after the malformed messages were processed too (all N arrived), and the
    # worker is still running.
    assert process.poll() is None
    client = redis.Redis.from_url(pipeline_settings.resolved_redis_url)
    assert int(client.hget(COUNTERS, "dead_letters")) == len(MALFORMED)


def test_status_shows_the_counters_and_the_clickhouse_backlog(pipeline_settings, worker, produced):
    client = redis.Redis.from_url(pipeline_settings.resolved_redis_url)
    wait_for("the sink to write and commit everything", lambda: int(client.hget("iw:sink", "rows_written") or 0) >= N_EVENTS
             and client.hget("iw:sink", "lag_messages") == b"0")
    result = subprocess.run([sys.executable, "-m", "inferwatch.cli", "--state-dir", str(pipeline_settings.state_dir),
                             "status"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"dead_letters={len(MALFORMED)}" in result.stdout
    assert f"rows_written={N_EVENTS}" in result.stdout and "lag_messages=0" in result.stdout
    assert "kafka      running" in result.stdout


def test_query_pack_runs_through_the_worker_that_owns_chdb(pipeline_settings, worker, produced):
    wait_for(f"{N_EVENTS} rows", lambda: query_worker(worker[1], "SELECT count() FROM inference_events")[1][0][0] >= N_EVENTS)
    result = subprocess.run([sys.executable, "-m", "inferwatch.cli", "--state-dir", str(pipeline_settings.state_dir),
                             "query", "tokens_by_model", "--since", "1h", "--json"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert sum(r["requests"] for r in rows) == N_EVENTS
    assert sum(r["total_input_tokens"] for r in rows) == sum(e["input_tokens"] for e in produced)
