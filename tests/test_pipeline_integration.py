"""End to end on the real stack: publisher -> Kafka -> Faust worker -> Redis + ClickHouse (chdb).

Produces N events with known content plus K malformed messages, and feedback on its own topic
(one malformed message too), then checks that exactly the N events reach ClickHouse, that every
window in Redis and in ClickHouse, request and feedback windows, matches an exact computation over
what was produced, and that the malformed messages land in the dead-letter topic with their
reasons while the worker keeps going.
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

from clickhouse_backends import server_database
from inferwatch.deploy.local_stack import create_topics
from inferwatch.processors.aggregators import outputs as aggregator_outputs
from inferwatch.producers.publisher import EventPublisher
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.query import query_worker
from inferwatch.sinks.redis.live_state import COUNTERS, read_windows
from exact import (
    add_partials,
    all_counted,
    assert_window_matches,
    exact_feedback_windows,
    exact_windows,
    from_redis,
    make_feedback,
    window_series,
)
from waiting import wait_for
from workers import Worker
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
    # Over Faust's 1 MB producer default: dead-lettering it raised, and the worker crash-looped.
    b"\x00\x00\x00\x03\xe8" + bytes(2_000_000): "unknown schema id 1000",
    EventCodec(local_schema_ids()).encode_batch(
        TrafficModel(seed=1).events(np.array([1_700_000_000_000]))
    )[:-3]: "undecodable Avro body",
}
MALFORMED_FEEDBACK = b"\x00\x00\x00\x00\x03" + b"\xff" * 12  # framed with the feedback schema id, body garbage
N_FEEDBACK = 1_500
SINGLE_EVENT_MESSAGES = 200
DEADLINE_S = 180


@pytest.fixture(scope="module", params=["chdb", "server"])
def pipeline_settings(request, stack):
    """The whole module runs on each ClickHouse backend (clickhouse_backends.py): embedded chdb,
    and a database of its own on a server when INFERWATCH_CLICKHOUSE_URL names one (skipped
    otherwise, saying why)."""
    if request.param == "server":
        with server_database() as dsn:
            yield _pipeline_settings(stack, dsn)
    else:
        yield _pipeline_settings(stack, "")


def _pipeline_settings(stack, clickhouse_dsn):
    run = uuid.uuid4().hex[:8]
    settings = stack.model_copy(update={
        "clickhouse_dsn": clickhouse_dsn,
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
def sent(pipeline_settings, worker):
    """Publish N events over SPAN_WINDOWS windows of the past, malformed messages half-way, and
    feedback over the same windows; returns (events, feedback)."""
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
    feedback = make_feedback(N_FEEDBACK, t0, SPAN_WINDOWS * window_ms, seed=12)
    feedback_publisher = EventPublisher(pipeline_settings, topic=pipeline_settings.feedback_topic)
    for i, record in enumerate(feedback):  # keyed by request_id, as the SDK sends it
        feedback_publisher.send_raw(feedback_publisher.codec.encode_feedback(record), key=record["request_id"].encode())
        if i == N_FEEDBACK // 2:
            feedback_publisher.send_raw(MALFORMED_FEEDBACK, key=b"bad")
    assert feedback_publisher.flush(60) == 0
    return events, feedback


@pytest.fixture(scope="module")
def produced(sent):
    return sent[0]


@pytest.fixture(scope="module")
def feedback_sent(sent):
    return sent[1]


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
                   if w["state"] == "closed" and w["window_seconds"] == str(WINDOW_S) and w["hop_seconds"] == "0"
                   and w["keyset"] != "feedback"]
        return windows if all_counted(windows, N_EVENTS) else None

    redis_windows = add_partials(
        ((window_series(w), int(w["window_start_ms"])), w) for w in wait_for("all windows to close in Redis", closed_panes)
    )
    def written_rollups():
        columns, rows = query_worker(
            web_url,
            "SELECT keyset, service, model, model_version, tenant_id, route, "
            "toUnixTimestamp(window_start) * 1000 AS start_ms, events, errors, timeouts, filtered, input_tokens, "
            "output_tokens, cost_usd, latency_p50_ms, latency_p90_ms, latency_p99_ms, latency_max_ms, ttft_p95_ms, "
            f"error_types FROM window_rollups WHERE window_seconds = {WINDOW_S} AND hop_seconds = 0",
        )
        rows = [dict(zip(columns, r)) for r in rows]
        return rows if all_counted(rows, N_EVENTS) else None

    # ClickHouse is written after Redis, from a queue of its own (processors/committer.py).
    rollups = add_partials(((window_series(row), int(row["start_ms"])), row)
                           for row in wait_for("all closed windows in ClickHouse", written_rollups))
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


def test_feedback_windows_in_redis_and_clickhouse_match_exact_counts(pipeline_settings, worker, feedback_sent):
    _, web_url, _ = worker
    expected = exact_feedback_windows(feedback_sent, WINDOW_S)
    client = redis.Redis.from_url(pipeline_settings.resolved_redis_url)

    def closed_feedback_windows():
        windows = [w for w in read_windows(client, limit=2000) if w["keyset"] == "feedback" and w["state"] == "closed"]
        return windows if sum(int(w["feedback"]) for w in windows) == N_FEEDBACK else None

    columns, rows = [], []

    def rollups():
        nonlocal columns, rows
        columns, rows = query_worker(web_url, "SELECT service, model, toUnixTimestamp(window_start) * 1000 AS start_ms, "
                                              "feedback, thumbs_up, thumbs_down, ratings, rating_sum, hallucinations, "
                                              "judged FROM feedback_rollups")
        return sum(r[3] for r in rows) == N_FEEDBACK

    redis_windows = wait_for("every feedback window to close in Redis", closed_feedback_windows)
    wait_for("every feedback window in ClickHouse", rollups)
    names = ("feedback", "thumbs_up", "thumbs_down", "ratings", "rating_sum", "hallucinations", "judged")
    for source in ([{k: w[k] for k in ("service", "model", "window_start_ms", *names)} for w in redis_windows],
                   [dict(zip(("service", "model", "window_start_ms", *names), r)) for r in rows]):
        totals = {}
        for w in source:
            total = totals.setdefault((w["service"], w["model"], int(w["window_start_ms"])), dict.fromkeys(names, 0))
            for name in names:
                total[name] += float(w[name])
        assert totals.keys() == expected.keys()
        for key, exp in expected.items():
            got = totals[key]
            assert (got["feedback"], got["thumbs_up"], got["thumbs_down"], got["hallucinations"], got["judged"]) == (
                exp["feedback"], exp["thumbs_up"], exp["thumbs_down"], exp["hallucinations"], exp["judged"]), key
            assert got["ratings"] == len(exp["ratings"]) and got["rating_sum"] == pytest.approx(sum(exp["ratings"]))
    assert int(client.hget(COUNTERS, "feedback")) == N_FEEDBACK


def test_malformed_messages_go_to_dead_letters_and_worker_keeps_going(pipeline_settings, worker, produced, feedback_sent):
    process, web_url, _ = worker
    consumer = Consumer(pipeline_settings.kafka_config(**{
        "group.id": f"dlq-check-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest",
    }))
    consumer.subscribe([pipeline_settings.dlq_topic])
    dead = []
    deadline = time.monotonic() + DEADLINE_S
    while len(dead) < len(MALFORMED) + 1 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            dead.append(message)
    consumer.close()
    assert len(dead) == len(MALFORMED) + 1
    by_source = {}
    for message in dead:
        headers = dict(message.headers())
        topic = headers["inferwatch.source"].decode().rsplit("/", 2)[0]
        by_source.setdefault(topic, []).append((message.value(), headers["inferwatch.reason"].decode()))
    assert by_source.keys() == {pipeline_settings.events_topic, pipeline_settings.feedback_topic}
    for value, reason in by_source[pipeline_settings.events_topic]:
        assert MALFORMED[value] in reason
    assert [(v, "undecodable Avro body" in r) for v, r in by_source[pipeline_settings.feedback_topic]] == [
        (MALFORMED_FEEDBACK, True)]
    # The rows follow the records: ClickHouse is written from a queue of its own (committer.py).
    wait_for("the dead_letters rows",
             lambda: query_worker(web_url, "SELECT count() FROM dead_letters")[1][0][0] == len(MALFORMED) + 1)
    # Events published after the malformed messages were processed too (all N arrived), and the
    # worker is still running.
    assert process.poll() is None
    client = redis.Redis.from_url(pipeline_settings.resolved_redis_url)
    wait_for("the dead-letter counter", lambda: int(client.hget(COUNTERS, "dead_letters") or 0) == len(MALFORMED) + 1)


def test_status_shows_the_counters_and_the_clickhouse_backlog(pipeline_settings, worker, produced):
    client = redis.Redis.from_url(pipeline_settings.resolved_redis_url)
    wait_for("the sink to write and commit everything", lambda: int(client.hget("iw:sink", "rows_written") or 0) >= N_EVENTS
             and client.hget("iw:sink", "lag_messages") == b"0")
    result = subprocess.run([sys.executable, "-m", "inferwatch.cli", "--state-dir", str(pipeline_settings.state_dir),
                             "status"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"dead_letters={len(MALFORMED) + 1}" in result.stdout
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


def test_every_aggregator_output_reaches_redis_window_rollups_and_status(pipeline_settings, worker, produced):
    """The writers derive their fields and columns from the registered aggregators
    (processors/aggregators/): each output of a closed model window is in its Redis hash and,
    when stored, in its window_rollups row with the same value; the shown ones are columns of
    `inferwatch status --windows`."""
    _, web_url, _ = worker
    client = redis.Redis.from_url(pipeline_settings.resolved_redis_url)
    scalar = [o for o in aggregator_outputs() if not o.is_map]

    def closed_model_pane():
        return next((w for w in read_windows(client, limit=2000) if w["state"] == "closed" and w["keyset"] == "model"
                     and w["window_seconds"] == str(WINDOW_S) and w["hop_seconds"] == "0"
                     and int(w["events"]) >= 100), None)

    pane = wait_for("a closed model pane in Redis", closed_model_pane)
    # The traffic model streams its OK responses, with many output tokens: every output has a value.
    assert {o.name for o in scalar} <= pane.keys()
    stored = [o.name for o in scalar if o.stored]

    def its_rollup():
        columns, rows = query_worker(
            web_url, f"SELECT {', '.join(stored)} FROM window_rollups WHERE keyset = 'model' "
            "AND toUnixTimestamp(window_start) * 1000 = {start:UInt64} AND service = {service:String} "
            "AND model = {model:String} AND model_version = {version:String} "
            f"AND window_seconds = {WINDOW_S} AND hop_seconds = 0",
            {"start": int(pane["window_start_ms"]), "service": pane["service"], "model": pane["model"],
             "version": pane["model_version"]})
        return dict(zip(columns, rows[0])) if rows else None

    row = wait_for("that pane's row in window_rollups", its_rollup)
    assert {name: row[name] for name in stored} == {name: pytest.approx(float(pane[name]), rel=1e-12) for name in stored}

    result = subprocess.run([sys.executable, "-m", "inferwatch.cli", "--state-dir", str(pipeline_settings.state_dir),
                             "status", "--windows", "--keyset", "model"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if line.startswith("window"))
    assert [o.name for o in scalar if o.shown] == [c for c in header.split() if c in {o.name for o in scalar}]
