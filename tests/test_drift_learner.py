"""Provisional reference profiles learned from a series' first panes: the same bins and
thresholds a profile built from those panes' raw events gets (the sketches bin exactly), marked
provisional; learned once, handed over once, then scored against."""

import numpy as np
import pytest

from inferwatch.processors.drift.learner import ProfileLearner
from inferwatch.processors.drift.profile import FeatureProfile, split_windows
from inferwatch.processors.drift.scorer import DriftScorer
from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.sketches.latency_sketch import LatencySketch
from inferwatch.processors.windows.keys import parse_keysets
from inferwatch.processors.windows.panes import Panes
from tests.test_drift_scorer import T0, closed_panes, minute_events


def test_a_profile_from_a_sketch_bins_its_values_exactly_and_keeps_their_spread():
    values = np.random.default_rng(3).lognormal(6, 0.9, 5000).round()
    sketch = LatencySketch()
    sketch.add_many(values)
    profile = FeatureProfile.from_sketch("input_tokens", sketch)
    assert np.array_equal(profile.sketch_counts(sketch), profile.counts(values))
    # Deciles: each bin holds about a tenth, to the sketch's 1 % buckets.
    assert np.allclose(profile.proportions, 0.1, atol=0.02)
    assert profile.std == pytest.approx(values.std(), rel=0.01)
    bin_of = np.searchsorted(profile.edges, values, side="left")
    assert np.allclose(profile.values, [values[bin_of == b].mean() for b in range(len(profile.edges) + 1)], rtol=0.01)


def model_panes(minutes, scope, scale=lambda m: 1.0):
    events = [e for m in minutes for e in minute_events(m, seed=m, scale=scale(m))]
    return [p for p in closed_panes(events) if tuple(p.series.values[:2]) == scope], events


def test_learned_thresholds_equal_those_calibrated_on_the_reference_panes_raw_events():
    scope = ("chat-api", "llama-3.1-8b-chat-ft")
    panes, events = model_panes(range(5), scope)
    learner = ProfileLearner(panes=5, min_events=50)
    learned = [learner.observe(scope, 60, p.window_start_ms, {"input_tokens": p.metrics["input_length"].sketch})
               for p in panes]
    assert learned[:4] == [None] * 4
    profile = learned[4]["input_tokens"]
    assert profile.provisional and "first 5 panes" in profile.source
    mine = [e for e in events if (e["service"], e["model"]) == scope]
    ts, values = np.array([e["ts"] for e in mine]), np.array([e["input_tokens"] for e in mine], float)
    expected = profile.calibrated(split_windows(ts, values, 60), 60, min_events=50)
    for statistic in ("js", "psi"):
        assert profile.threshold(statistic, 60).value == pytest.approx(expected.threshold(statistic, 60).value, abs=1e-12)


def test_panes_under_min_events_are_not_reference_panes():
    scope = ("chat-api", "llama-3.1-8b-chat-ft")
    panes, _ = model_panes(range(3), scope)
    learner = ProfileLearner(panes=3, min_events=10_000)
    assert all(learner.observe(scope, 60, p.window_start_ms, {"input_tokens": p.metrics["input_length"].sketch})
               is None for p in panes)


def test_a_series_without_a_profile_learns_one_then_alarms_on_a_shift():
    scope = ("chat-api", "llama-3.1-8b-chat-ft")
    scorer = DriftScorer("model", persistence=2, learner=ProfileLearner(panes=4, min_events=50))
    panes, _ = model_panes(range(8), scope, scale=lambda m: 5.0 if m >= 6 else 1.0)
    reference_rows = scorer.score(panes[:4], 0)
    assert reference_rows == []  # the reference panes themselves are not judged
    learned = scorer.take_learned()
    assert list(learned) == [scope] and scorer.take_learned() == {}
    assert {"input_tokens", "output_tokens", "latency_ms"} <= set(learned[scope])
    scorer.set_profiles({})  # a refresh from a Redis that does not hold it yet keeps it
    rows = [r for r in scorer.score(panes[4:], 0) if r["feature"] == "input_tokens" and r["statistic"] == "js"]
    assert [r["window_start"] for r in rows] == [T0 + m * 60_000 for m in (4, 5, 6, 7)]
    assert [r["drifted"] for r in rows] == [False, False, False, True]


def test_a_topic_mix_shift_is_scored_from_the_panes_category_counts_and_alarmed():
    scope = ("chat-api", "llama-3.1-8b-chat-ft")
    events = [e for m in range(9) for e in minute_events(m, seed=m)]
    shifted = [e for e in events if e["ts"] >= T0 + 6 * 60_000 and (e["service"], e["model"]) == scope]
    for i, e in enumerate(shifted):  # from minute 6 on, half of the traffic asks technical questions
        if i % 2:
            e["topic"] = "technical"
    panes = [p for p in closed_panes(events) if tuple(p.series.values[:2]) == scope]
    scorer = DriftScorer("model", persistence=2, learner=ProfileLearner(panes=5, min_events=50))
    rows = [r for r in scorer.score(panes, 0) if r["feature"] == "topic" and r["statistic"] == "js"]
    profile = scorer.take_learned()[scope]["topic"]
    assert profile.kind == "categorical" and set(profile.categories) == {e["topic"] for e in events}
    for row in rows:  # each pane's score is the statistic of its events' own topics
        topics = [e["topic"] for e in events if e["ts"] // 60_000 * 60_000 == row["window_start"]
                  and (e["service"], e["model"]) == scope]
        assert row["value"] == pytest.approx(profile.statistic("js", profile.counts(topics)), abs=1e-12)
    assert [r["window_start"] for r in rows] == [T0 + m * 60_000 for m in (5, 6, 7, 8)]
    assert [r["drifted"] for r in rows] == [False, False, True, True]


def test_a_group_within_a_model_is_judged_against_the_models_reference():
    """A key set with an attribute (here the prompt's language) scores each group's panes against
    its model's profile: a shift in one language's prompts alarms that group, not the other."""
    keysets = parse_keysets(["model=service,model,model_version", "language=service,model,attributes.language"])
    scope = ("chat-api", "llama-3.1-8b-chat-ft")
    events = [e for m in range(10) for e in minute_events(m, seed=m, n=1800)]
    for i, e in enumerate(events):
        e["attributes"] = {"language": "fr" if i % 3 == 0 else "en"}
        if e["attributes"]["language"] == "fr" and e["ts"] >= T0 + 6 * 60_000:
            e["input_tokens"] *= 4
    panes = Panes(60, 0, 5, partitions=(0,))
    panes.add(EventBatch.from_events(events, keysets), 0, 0.0)
    closed = sorted(panes.close_due(0.0) + list(panes.open.values()), key=lambda p: p.window_start_ms)
    scorer = DriftScorer("model", persistence=2, learner=ProfileLearner(panes=5, min_events=50),
                         group_keysets=("language",))
    rows = [r for r in scorer.score(closed, 0) if r["feature"] == "input_tokens" and r["statistic"] == "js"]
    alarmed = {(r["keyset"], r["series"]) for r in rows if r["drifted"]}
    assert ("language", "chat-api|llama-3.1-8b-chat-ft|fr") in alarmed
    assert ("language", "chat-api|llama-3.1-8b-chat-ft|en") not in alarmed
    fr = [r for r in rows if r["series"] == "chat-api|llama-3.1-8b-chat-ft|fr"]
    assert [r["window_start"] for r in fr] == [T0 + m * 60_000 for m in range(5, 10)]  # from the model's reference on
    assert [r["drifted"] for r in fr] == [False, False, True, True, True]
    assert scope in scorer.take_learned()
