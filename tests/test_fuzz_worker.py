"""Fuzz the real worker (Kafka, redis-server, chdb): adversarial events and random frames mixed
into valid traffic. The worker stays up; every invalid event is on the dead-letter topic with its
reason; every valid event is counted once in the Redis windows and stored once in ClickHouse."""

from __future__ import annotations

import math
import time
import uuid

import numpy as np
import pytest
import redis
from confluent_kafka import Consumer
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from inferwatch.deploy.local_stack import create_topics
from inferwatch.producers.publisher import EventPublisher
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.sinks.redis.live_state import COUNTERS, read_windows
from redis_server import RedisServer
from waiting import wait_for
from workers import Worker

pytestmark = pytest.mark.integration
WINDOW_S = 10
MAX_SERIES = 40
DAY_MS = 86_400_000
NOW_MS = int(time.time() * 1000)

# Invalid whatever the broker's clock says (the bounds are far from them).
INVALID = st.one_of(
    st.fixed_dictionaries({"latency_ms": st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 1e300])}),
    st.fixed_dictionaries({"ttft_ms": st.sampled_from([math.nan, -math.inf, -5.0])}),
    st.fixed_dictionaries({"input_tokens": st.integers(-2**31, -1)}),
    st.fixed_dictionaries({"output_tokens": st.integers(10_000_001, 2**31 - 1)}),
    st.fixed_dictionaries({"ts": st.sampled_from([0, 4_070_908_800_000, NOW_MS - 30 * DAY_MS, NOW_MS + DAY_MS])}),
    st.fixed_dictionaries({"event_id": st.text(max_size=40).filter(lambda s: len(s) != 36)}),
    st.fixed_dictionaries({"model": st.sampled_from(["", "m" * 257])}),
    st.fixed_dictionaries({"prompt_text": st.just("p" * 200_001)}),
    st.fixed_dictionaries({"quality_scores": st.dictionaries(st.text(min_size=1, max_size=8), st.floats(0, 1),
                                                             min_size=65, max_size=200)}),
    st.fixed_dictionaries({"confidence": st.sampled_from([math.nan, 1.5, -0.1])}),
    st.fixed_dictionaries({"cost_usd": st.sampled_from([math.nan, -1.0, math.inf])}),
)
# Valid, but hostile to whatever keys, counts or stores by them.
SEPARATORS = st.text(alphabet="ab|:%\\ é", min_size=1, max_size=12)
HOSTILE_VALID = st.one_of(
    st.fixed_dictionaries({"route": SEPARATORS}),
    st.fixed_dictionaries({"tenant_id": SEPARATORS, "error_type": SEPARATORS}),
    st.fixed_dictionaries({"route": st.integers(0, 100_000).map(lambda i: f"/r/{i}")}),  # thousands of routes
    st.fixed_dictionaries({"quality_scores": st.dictionaries(st.text(min_size=1, max_size=8), st.floats(-1e6, 1e6),
                                                             max_size=64)}),
    st.fixed_dictionaries({"latency_ms": st.floats(0, 86_400_000), "ttft_ms": st.none() | st.floats(0, 1000)}),
)
# Frames no decoder may accept: not Confluent-framed, an unknown schema id, or garbage after a
# known one (a batch body must be an array of events: a lone 0x05 count then nothing is truncated).
FRAMES = st.one_of(
    st.binary(min_size=0, max_size=64).filter(lambda b: not b.startswith(b"\x00")),
    st.binary(max_size=64).map(lambda body: b"\x00\x00\x00\x03\xe7" + body),
    st.just(b"\x00\x00\x00\x00\x02\x05"),
)
# (field changes, whether they make the event invalid): mostly ordinary events.
CHANGES = st.one_of(st.just(({}, False)), st.just(({}, False)), st.just(({}, False)),
                    INVALID.map(lambda change: (change, True)), HOSTILE_VALID.map(lambda change: (change, False)))


@pytest.fixture(scope="module")
def fuzz_settings(stack, tmp_path_factory):
    run = uuid.uuid4().hex[:8]
    server = RedisServer(tmp_path_factory.mktemp("fuzz-redis")).start()  # its windows are all ours
    settings = stack.model_copy(update={
        "events_topic": f"fz-{run}", "dlq_topic": f"fz-{run}.dlq", "feedback_topic": f"fz-{run}.feedback",
        "app_id": f"fz-{run}", "redis_url": server.url, "state_dir": tmp_path_factory.mktemp("fuzz"),
        "window_seconds": WINDOW_S, "longer_windows": [], "allowed_lateness_seconds": 2.0,
        "partition_idle_seconds": 2.0, "live_update_seconds": 0.5, "max_series_per_keyset": MAX_SERIES,
        "kafka_bootstrap": stack.resolved_kafka_bootstrap,
    })
    create_topics(settings, settings.kafka_bootstrap, progress=lambda _: None)
    yield settings
    server.stop()


@pytest.fixture(scope="module")
def worker(fuzz_settings):
    running = Worker(fuzz_settings, "worker-fuzz")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def dead_letters(fuzz_settings):
    consumer = Consumer(fuzz_settings.kafka_config(**{"group.id": f"fuzz-dlq-{uuid.uuid4().hex[:6]}",
                                                      "auto.offset.reset": "earliest"}))
    consumer.subscribe([fuzz_settings.dlq_topic])
    yield consumer
    consumer.close()


def window_events(client) -> dict[str, int]:
    """Events in every 1-pane window in Redis, per key set (open and closed, __other__ included)."""
    totals: dict[str, int] = {}
    for window in read_windows(client, limit=1_000_000):
        if window["window_seconds"] == str(WINDOW_S):
            totals[window["keyset"]] = totals.get(window["keyset"], 0) + int(window["events"])
    return totals


@hypothesis_settings(max_examples=3, deadline=None, phases=[Phase.generate], database=None,
                     suppress_health_check=list(HealthCheck))
@given(changes=st.lists(CHANGES, min_size=300, max_size=600), frames=st.lists(FRAMES, min_size=1, max_size=10))
def test_the_worker_keeps_every_valid_event_once_and_dead_letters_the_rest(fuzz_settings, worker, dead_letters,
                                                                           changes, frames):
    client = redis.Redis.from_url(fuzz_settings.redis_url)
    before = {"windows": window_events(client), "events": int(client.hget(COUNTERS, "events") or 0),
              "late": int(client.hget(COUNTERS, "late_events") or 0)}
    now_ms = int(time.time() * 1000)
    base = TrafficModel(seed=len(changes)).events(np.linspace(now_ms - 5_000, now_ms, len(changes)).astype(np.int64))
    events = [{**event, "event_id": str(uuid.uuid4()), **change} for event, (change, _) in zip(base, changes)]
    invalid = {e["event_id"] for e, (_, is_invalid) in zip(events, changes) if is_invalid}
    valid = {e["event_id"] for e in events} - invalid

    publisher = EventPublisher(fuzz_settings)
    for i, event in enumerate(events):
        if i % 7 == 0:  # some as single-event messages, as a third-party producer sends them
            publisher.send_raw(publisher.codec.encode_event(event), key=f"{event['service']}|{event['model']}".encode())
        else:
            publisher.publish(event)
    for frame in frames:
        publisher.send_raw(frame, key=b"fuzz-frame")
    assert publisher.flush(60) == 0

    got = []
    wait_for("the dead letters", lambda: got.extend(m for m in dead_letters.consume(100, 0.5) if m.error() is None)
             or len(got) >= len(invalid) + len(frames))
    refused = [publisher.codec.decode(m.value())[0]["event_id"] for m in got if m.key() != b"fuzz-frame"]
    assert sorted(refused) == sorted(invalid)
    assert all(dict(m.headers())["inferwatch.reason"] for m in got)
    assert sum(m.key() == b"fuzz-frame" for m in got) == len(frames)

    def counted():
        return int(client.hget(COUNTERS, "events") or 0) - before["events"] >= len(valid)
    wait_for("the valid events counted", counted)
    late = int(client.hget(COUNTERS, "late_events") or 0) - before["late"]
    for keyset in ("model", "tenant", "route"):  # each valid event in one window of each key set, or late
        wait_for(f"the {keyset} windows", lambda: window_events(client).get(keyset, 0)
                 - before["windows"].get(keyset, 0) + late == len(valid))
    ids = ", ".join(f"'{i}'" for i in sorted(valid | invalid))
    query = f"SELECT count(), uniqExact(event_id) FROM inference_events FINAL WHERE event_id IN ({ids})"
    wait_for("the valid events in ClickHouse", lambda: worker.sql(query)[1] == [[len(valid), len(valid)]])
    assert worker.process.poll() is None

