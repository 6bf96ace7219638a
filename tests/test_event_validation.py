"""One definition of a valid event (schemas/validation.py): refused one by one by the worker,
kept out of inference_events by ClickHouse, the same events on both paths."""

from __future__ import annotations

import math
import uuid

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from clickhouse_backends import dsn, server_dsn  # noqa: F401 (fixtures)
from inferwatch.processors.pipeline import WindowPipeline, RawMessage
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.validation import event_rules, invalid_events
from inferwatch.schemas.wire import EventCodec, unframe
from inferwatch.settings import Settings
from inferwatch.sinks.clickhouse.avro_container import RecordBlock, object_container
from inferwatch.sinks.clickhouse.event_intake import INTAKE_TABLE, message_record, message_schema
from inferwatch.sinks.clickhouse.tables import ClickHouseTables

T0 = 1_700_000_040_000
LIMITS = Settings().event_limits
RULES = event_rules(LIMITS)
CODEC = EventCodec(local_schema_ids())


def events(n, start_ms=T0, seed=1):
    return TrafficModel(seed=seed).events(np.arange(n, dtype=np.int64) * 10 + start_ms)


def with_changes(event, changes):
    return {**event, "event_id": str(uuid.uuid4()), **changes}


# field changes that make an event invalid -> what its dead-letter reason must start with
ADVERSARIAL = {
    "NaN latency": ({"latency_ms": math.nan}, "latency_ms"),
    "infinite latency": ({"latency_ms": math.inf}, "latency_ms"),
    "negative latency": ({"latency_ms": -1.0}, "latency_ms"),
    "huge latency": ({"latency_ms": 1e300}, "latency_ms"),
    "-inf TTFT": ({"ttft_ms": -math.inf}, "ttft_ms"),
    "NaN confidence": ({"confidence": math.nan}, "confidence"),
    "negative input tokens": ({"input_tokens": -5}, "input_tokens"),
    "too many output tokens": ({"output_tokens": LIMITS.max_tokens + 1}, "output_tokens"),
    "negative prompt chars": ({"prompt_chars": -1}, "prompt_chars"),
    "ts in 2099": ({"ts": 4_070_908_800_000}, "ts"),
    "ts before the age limit": ({"ts": T0 - int(LIMITS.max_event_age_seconds * 1000) - 1}, "ts"),
    "ts a little ahead": ({"ts": T0 + int(LIMITS.max_clock_skew_seconds * 1000) + 1}, "ts"),
    "event_id not a UUID": ({"event_id": "42"}, "event_id"),
    "huge model name": ({"model": "m" * (LIMITS.max_label_chars + 1)}, "model"),
    "empty service": ({"service": ""}, "service"),
    "huge prompt text": ({"prompt_text": "x" * (LIMITS.max_text_chars + 1)}, "prompt_text"),
    "thousands of quality scores": ({"quality_scores": {f"q{i}": 1.0 for i in range(5_000)}}, "quality_scores"),
    "NaN quality score": ({"quality_scores": {"rouge": math.nan}}, "quality_scores"),
    "huge attribute": ({"attributes": {"region": "r" * (LIMITS.max_label_chars + 1)}}, "attributes"),
    "negative cost": ({"cost_usd": -0.01}, "cost_usd"),
    "GPU 700 % busy": ({"resources": {"gpu_util": 7.0, "gpu_mem_mb": None, "cpu_util": None, "mem_mb": None}},
                       "resources.gpu_util"),
}


@pytest.mark.parametrize("case", ADVERSARIAL)
def test_each_invalid_value_is_refused_alone_with_its_reason(case):
    changes, field = ADVERSARIAL[case]
    valid = events(2)
    batch = [valid[0], with_changes(valid[0], changes), valid[1]]
    reasons = invalid_events(RULES, batch, np.full(3, T0, dtype=np.int64))
    assert list(reasons) == [1]
    assert reasons[1].startswith(f"{field} must be")


def test_the_bounds_themselves_are_valid():
    base = events(1)[0]
    ref = T0
    edge = [with_changes(base, {"ts": ref + int(LIMITS.max_clock_skew_seconds * 1000)}),
            with_changes(base, {"ts": ref - int(LIMITS.max_event_age_seconds * 1000)}),
            with_changes(base, {"latency_ms": 0.0, "ttft_ms": None, "confidence": 1.0, "cost_usd": None,
                                "input_tokens": 0, "output_tokens": LIMITS.max_tokens,
                                "model": "m" * LIMITS.max_label_chars, "quality_scores": {}})]
    assert invalid_events(RULES, edge, np.full(3, ref, dtype=np.int64)) == {}


def test_invalid_events_are_dead_lettered_one_by_one_and_the_rest_of_their_message_goes_on():
    """Before: one NaN latency crashed the worker (the sketch refused it), on every restart."""
    pipeline = WindowPipeline(Settings(kafka_partitions=1), CODEC)
    good = events(200)
    bad = [with_changes(good[0], changes) for changes, _ in ADVERSARIAL.values()]
    mixed = good[:100] + bad + good[100:]
    message = RawMessage("events", 0, 42, b"k", CODEC.encode_batch(mixed), T0)

    outcome = pipeline.process([message], wall_ms=0)

    assert outcome.events == len(good)
    assert [d.event_index for d in outcome.dead_letters] == list(range(100, 100 + len(bad)))
    for dead, sent in zip(outcome.dead_letters, bad):
        assert dead.message.offset == 42
        [refused] = CODEC.decode(dead.payload)  # the event alone, as a single-event message
        assert refused["event_id"] == sent["event_id"]
        assert dead.as_row(0)["reason"].startswith(f"event {dead.event_index}: ")
    update = pipeline.live_update(wall_ms=0)
    assert update.counters["invalid_events"] == len(bad)
    assert update.counters["events"] == len(good)
    for keyset in ("model", "tenant", "route"):  # the valid events, each in one window per key set
        assert sum(w["events"] for w in update.open_windows
                   if w["keyset"] == keyset and w["window_seconds"] == 60) == len(good)


def test_an_event_from_2099_does_not_make_the_following_events_late():
    """Before: its partition's event time jumped to 2099 and the next 501 events were all late."""
    pipeline = WindowPipeline(Settings(kafka_partitions=1), CODEC)
    future = with_changes(events(1)[0], {"ts": 4_070_908_800_000})
    pipeline.process([RawMessage("events", 0, 0, b"k", CODEC.encode_event(future), T0)], wall_ms=0)
    following = events(501, start_ms=T0 + 10)
    outcome = pipeline.process([RawMessage("events", 0, 1, b"k", CODEC.encode_batch(following), T0 + 6_000)],
                               wall_ms=1)
    assert (outcome.events, outcome.late) == (501, 0)


def test_a_message_with_more_events_than_the_cap_is_refused_whole_before_decoding():
    pipeline = WindowPipeline(Settings(kafka_partitions=1, max_events_per_message=10), CODEC)
    messages = [RawMessage("events", 0, 0, b"k", CODEC.encode_batch(events(11)), T0 + 1_000),
                RawMessage("events", 0, 1, b"k", CODEC.encode_batch(events(10)), T0 + 1_000)]
    outcome = pipeline.process(messages, wall_ms=0)
    assert outcome.events == 10
    [dead] = outcome.dead_letters
    assert (dead.message.offset, dead.event_index) == (0, None)
    assert "11 events: more than max_events_per_message (10)" in dead.reason


# --- the same events on both paths ---------------------------------------------------------------

BAD_VALUES = {
    "latency_ms": [math.nan, math.inf, -math.inf, -0.5, 1e300],
    "ttft_ms": [None, math.nan, -1.0, 1e12],
    "input_tokens": [-1, LIMITS.max_tokens + 1, 2**31 - 1],
    "output_tokens": [-2**31],
    "ts": [0, -1, T0 + 10_001, T0 - int(LIMITS.max_event_age_seconds * 1000) - 1, 2**62],
    "event_id": ["", "not-a-uuid", "12345678-1234-1234-1234-1234567890ab\n", "{12345678-1234-1234-1234-1234567890ab}"],
    "model": ["", "|", "a|b:c", "é" * LIMITS.max_label_chars, "é" * (LIMITS.max_label_chars + 1)],
    "confidence": [math.nan, 1.0000001, -0.0],
    "cost_usd": [math.nan, -1e-9, 1e7],
    "quality_scores": [{"a": math.inf}, {"k" * (LIMITS.max_label_chars + 1): 1.0},
                       {f"q{i}": 0.5 for i in range(LIMITS.max_map_entries + 1)}],
    "attributes": [{"a": "v" * (LIMITS.max_label_chars + 1)}, {f"a{i}": "" for i in range(LIMITS.max_map_entries)}],
}
event_changes = st.dictionaries(st.sampled_from(sorted(BAD_VALUES)), st.none(), max_size=3).flatmap(
    lambda keys: st.fixed_dictionaries({k: st.sampled_from(BAD_VALUES[k]) for k in keys}))


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    sink = ClickHouseTables(f"chdb://{tmp_path_factory.mktemp('validation') / 'clickhouse'}")
    sink.ensure_schema(limits=LIMITS)
    yield sink
    sink.close()


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(event_changes, min_size=1, max_size=12), min_size=1, max_size=4))
def test_clickhouse_keeps_exactly_the_events_the_worker_keeps(clickhouse, messages_changes):
    base = events(1)[0]
    messages = [[with_changes(base, changes) for changes in message] for message in messages_changes]
    kafka_ts = [T0 + 1_000 * i for i in range(len(messages))]
    worker_keeps = set()
    for message, ts in zip(messages, kafka_ts):
        refused = invalid_events(RULES, message, np.full(len(message), ts, dtype=np.int64))
        worker_keeps |= {e["event_id"] for i, e in enumerate(message) if i not in refused}

    clickhouse.query(f"TRUNCATE TABLE inference_events")
    records = [RecordBlock(1, message_record(unframe(CODEC.encode_batch(message))[1], True, ts))
               for message, ts in zip(messages, kafka_ts)]
    clickhouse.insert_avro(INTAKE_TABLE, ["kafka_ts", "events"], object_container(message_schema(), records),
                           uuid.uuid4().hex)
    stored = {str(row[0]) for row in clickhouse.query("SELECT event_id FROM inference_events").rows}
    assert stored == worker_keeps
