"""The worker's batch logic on plain objects: decode, dead letters, windows, alerts."""

import numpy as np

from exact import make_feedback
from inferwatch.processors.pipeline import WindowPipeline, RawMessage
from inferwatch.producers.scenarios import Scenario
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec
from inferwatch.settings import Settings

T0 = 1_700_000_040_000


def messages(codec, batches, partition=0):
    # Appended by the broker just after the batch's newest event: all in range (schemas/validation.py).
    return [RawMessage("events", partition, offset, b"k", codec.encode_batch(batch), max(e["ts"] for e in batch))
            for offset, batch in enumerate(batches)]


def test_bad_messages_become_dead_letters_and_good_ones_still_count():
    codec = EventCodec(local_schema_ids())
    pipeline = WindowPipeline(Settings(kafka_partitions=1), codec)
    events = TrafficModel(seed=2).events(np.arange(300, dtype=np.int64) + T0)
    batch = messages(codec, [events[:150], events[150:]])
    bad = [RawMessage("events", 0, 7, None, None), RawMessage("events", 0, 8, b"k", b"garbage!")]
    outcome = pipeline.process([batch[0], *bad, batch[1]], wall_ms=0)
    assert outcome.events == len(events)
    assert [d.message.offset for d in outcome.dead_letters] == [7, 8]
    assert all("not Confluent-framed" in d.reason for d in outcome.dead_letters)
    update = pipeline.live_update(wall_ms=0)
    assert update.counters == {"events": 300, "batch_messages": 2, "dead_letters": 2, "invalid_events": 0, "late_events": 0,
                               "feedback": 0, "late_feedback": 0}
    for keyset in ("model", "tenant", "route"):  # every event is in one window of each key set and size
        for size in (60, 3600):
            assert sum(w["events"] for w in update.open_windows
                       if w["window_seconds"] == size and w["keyset"] == keyset) == 300
    # Counters are increments: the next update reports only what happened since.
    assert pipeline.live_update(wall_ms=0).counters["events"] == 0


def test_p99_alert_fires_once_for_the_regressed_model_only():
    codec = EventCodec(local_schema_ids())
    settings = Settings(kafka_partitions=1, alert_p99_latency_ms=10_000, alert_min_events=50)
    pipeline = WindowPipeline(settings, codec)
    regression = Scenario("latency-regression", "llama-3.1-8b-chat-ft", from_ts_ms=T0, factor=4.0)
    events = TrafficModel(seed=3).events(np.sort(T0 + np.arange(3000, dtype=np.int64) * 10), [regression])
    pipeline.process(messages(codec, [events[:1500]]), wall_ms=0)
    first = pipeline.live_update(wall_ms=0)
    pipeline.process(messages(codec, [events[1500:]]), wall_ms=1)
    second = pipeline.live_update(wall_ms=1)
    assert {a["model"] for a in first.alerts} == {"llama-3.1-8b-chat-ft"}
    assert all(a["value"] > 10_000 for a in first.alerts)
    assert second.alerts == []  # same window: already fired


def test_a_message_is_committable_only_once_its_windows_are_closed():
    codec = EventCodec(local_schema_ids())
    pipeline = WindowPipeline(Settings(kafka_partitions=1, allowed_lateness_seconds=0,
                                           partition_idle_seconds=1, longer_windows=[]), codec)
    events = TrafficModel(seed=5).events(np.arange(100, dtype=np.int64) * 100 + T0)  # all in one pane
    tokens = [object(), object()]
    batch = [RawMessage("events", 0, i, b"k", codec.encode_batch(events[i * 50:(i + 1) * 50]),
                        events[(i + 1) * 50 - 1]["ts"], ack_token=t)
             for i, t in enumerate(tokens)]
    bad = RawMessage("events", 0, 2, None, b"garbage", ack_token=object())
    pipeline.process([*batch, bad], wall_ms=0)
    assert pipeline.live_update(wall_ms=0).ackable == [bad.ack_token]  # dead letter: at once
    later = pipeline.live_update(wall_ms=120_000)  # the stream went quiet: the window closes
    assert later.closed_windows and later.ackable == tokens


def test_feedback_is_committable_once_its_window_closes_and_each_window_says_its_ratio():
    codec = EventCodec(local_schema_ids())
    pipeline = WindowPipeline(Settings(kafka_partitions=1, allowed_lateness_seconds=0,
                                           partition_idle_seconds=1), codec)
    feedback = make_feedback(40, T0, 30_000)  # all in one pane
    batch = [RawMessage("feedback", 0, i, b"k", codec.encode_feedback(f), ack_token=object())
             for i, f in enumerate(feedback)]
    bad = RawMessage("feedback", 0, 40, None, codec.encode_event(TrafficModel(seed=1).events(np.array([T0]))[0]),
                     ack_token=object())
    dead = pipeline.process_feedback([*batch, bad], wall_ms=0)
    assert [d.message.offset for d in dead] == [40] and "unknown schema id 1 (feedback=3)" in dead[0].reason
    first = pipeline.live_update(wall_ms=0)
    assert first.ackable == [bad.ack_token]  # dead letter: at once
    assert sum(w["feedback"] for w in first.open_windows) == 40
    later = pipeline.live_update(wall_ms=120_000)  # the stream went quiet: the window closes
    assert later.ackable == [m.ack_token for m in batch]
    ups, downs = sum(f["thumbs"] == 1 for f in feedback), sum(f["thumbs"] == -1 for f in feedback)
    by_model = {}
    for w in later.closed_windows:
        by_model[w["model"]] = w
        assert w["positive_ratio"] == (w["thumbs_up"] / (w["thumbs_up"] + w["thumbs_down"])
                                       if w["thumbs_up"] + w["thumbs_down"] else None)
    assert sum(w["thumbs_up"] for w in by_model.values()) == ups
    assert sum(w["thumbs_down"] for w in by_model.values()) == downs
    assert later.counters["feedback"] == 0 and first.counters["feedback"] == 40
