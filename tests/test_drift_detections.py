"""Drift detections on the drift topic: only a score entering alarm (not every pane of the alarm)
and every ADWIN change become DriftEvent records, which round-trip through the Avro schema."""

from inferwatch.processors.drift.detections import detection_records
from inferwatch.processors.drift.scorer import DriftScorer
from inferwatch.processors.drift.learner import ProfileLearner
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec
from tests.test_drift_learner import model_panes


def test_an_alarm_is_one_record_at_its_first_pane_and_round_trips_through_avro():
    scope = ("chat-api", "llama-3.1-8b-chat-ft")
    panes, _ = model_panes(range(10), scope, scale=lambda m: 5.0 if m >= 6 else 1.0)
    scorer = DriftScorer("model", persistence=2, learner=ProfileLearner(panes=4, min_events=50))
    rows = scorer.score(panes, 1_800_000_000_000)
    alarms = [r for r in rows if r["feature"] == "input_tokens" and r["drifted"]]
    assert len({r["window_start"] for r in alarms}) == 3  # minutes 7, 8, 9 are in alarm
    records = [r for r in detection_records(rows) if r["feature"] == "input_tokens"]
    assert sorted((r["statistic"], r["event_time"]) for r in records) == sorted(
        (r["statistic"], min(a["window_start"] for a in alarms if a["statistic"] == r["statistic"])) for r in records)
    assert {r["statistic"] for r in records} == {"js", "psi"}
    codec = EventCodec(local_schema_ids())
    for record in records:
        assert codec.decode_drift(codec.encode_drift(record)) == record
        assert record["threshold"] < record["value"] and record["reference"] is None


def test_every_adwin_change_is_a_record_with_its_means():
    row = {"ts": 1, "window_start": 2, "window_seconds": 0, "service": "s", "model": "m", "model_version": "v",
           "keyset": "model", "series": "s|m|v", "feature": "latency_ms", "detector": "adwin", "statistic": "mean", "value": 300.0,
           "threshold": float("nan"), "reference": 100.0, "events": 40, "reference_events": 900, "drifted": True}
    (record,) = detection_records([row])
    assert (record["value"], record["reference"], record["threshold"], record["reference_events"]) == (300.0, 100.0, None, 900)
