"""The pane scorer: a closed pane's scores equal the statistic of its events' own bin counts
against the reference (to 1e-9), alarms need `persistence` panes in a row, and reference profiles
are built per (service, model), saying why one is left out."""

import numpy as np
import pytest

from inferwatch.processors.drift.baseline import FEATURES, build_profiles
from inferwatch.processors.drift.profile import FeatureProfile, split_windows
from inferwatch.processors.drift.scorer import DriftScorer
from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.windows.keys import parse_keysets
from inferwatch.processors.windows.panes import Panes
from inferwatch.producers.traffic_model import TrafficModel

T0 = 1_700_000_040_000
KEYSETS = parse_keysets(["model=service,model,model_version"])


def minute_events(minute: int, seed: int, scale: float = 1.0, n: int = 900) -> list[dict]:
    ts = np.sort(T0 + minute * 60_000 + np.random.default_rng(seed).integers(0, 60_000, n))
    return [{**e, "input_tokens": int(e["input_tokens"] * scale)} for e in TrafficModel(seed=seed).events(ts)]


def closed_panes(events: list[dict]) -> list:
    panes = Panes(60, 0, 5, partitions=(0,))
    panes.add(EventBatch.from_events(events, KEYSETS), 0, 0.0)
    return sorted(panes.close_due(0.0) + list(panes.open.values()), key=lambda p: p.window_start_ms)


def test_pane_scores_equal_the_statistics_of_their_events_and_alarm_after_two_in_a_row():
    reference = [e for m in range(6) for e in minute_events(m, seed=m)]
    scope = (reference[0]["service"], reference[0]["model"])
    mine = [e for e in reference if (e["service"], e["model"]) == scope]
    ts, values = np.array([e["ts"] for e in mine]), np.array([e["input_tokens"] for e in mine], float)
    profile = FeatureProfile.numeric("input_tokens", values).calibrated(split_windows(ts, values, 60), 60, min_events=50)
    scorer = DriftScorer("model", persistence=2)
    scorer.set_profiles({scope: {"input_tokens": profile}})

    later = [e for m in (6, 7, 8) for e in minute_events(m, seed=10 + m, scale=1.0 if m == 6 else 5.0)]
    panes = [p for p in closed_panes(later) if (p.series.values[0], p.series.values[1]) == scope]
    rows = [r for r in scorer.score(panes, 0) if r["statistic"] == "js"]
    assert [r["window_start"] for r in rows] == [T0 + m * 60_000 for m in (6, 7, 8)]
    for row in rows:
        events = [e["input_tokens"] for e in later if e["ts"] // 60_000 * 60_000 == row["window_start"]
                  and (e["service"], e["model"]) == scope]
        assert row["value"] == pytest.approx(profile.statistic("js", profile.counts(events)), abs=1e-9)
    over = [r["value"] > r["threshold"] for r in rows]
    assert over == [False, True, True]  # ordinary, then prompts five times longer
    assert [r["drifted"] for r in rows] == [False, False, True]  # the second pane in a row alarms


def test_profiles_are_built_per_model_and_a_thin_one_is_left_out_with_its_reason():
    events = [e for m in range(5) for e in minute_events(m, seed=m)]
    rows = [(e["service"], e["model"], e["ts"], *(e[f] for f in FEATURES)) for e in events]
    rows += [("tiny", "model", T0, 1, 1, 1.0, None, "stop")] * 20
    profiles, skipped = build_profiles(rows, 60, min_events=50)
    assert set(profiles) == {(e["service"], e["model"]) for e in events}
    assert all(set(p) == set(FEATURES) and all(f.threshold("js", 60) for f in p.values()) for p in profiles.values())
    assert list(skipped) == [("tiny", "model")] and "too few" in skipped["tiny", "model"]
