"""ADWIN per model series: the changes found, fed batch by batch through the pipeline's columns,
are exactly river's ADWIN run directly over each series' values, and each says the means and
counts on both sides of its cut (computed here from the values themselves)."""

import numpy as np
import pytest
from river.drift import ADWIN

from inferwatch.processors.drift.adwin import AdwinDetectors
from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.windows.keys import parse_keysets
from inferwatch.producers.scenarios import Scenario
from inferwatch.producers.traffic_model import TrafficModel

T0 = 1_700_000_000_000
KEYSETS = parse_keysets(["model=service,model,model_version"])
REGRESSED = "llama-3.1-8b-chat-ft"


def direct(values: list[float]) -> list[tuple[int, float, int, float, int]]:
    """river's ADWIN over one series: (index, mean before, count before, mean after, count after);
    it starts afresh after each detection."""
    detector, found, start = ADWIN(), [], 0
    for i, value in enumerate(values):
        detector.update(value)
        if detector.drift_detected:
            kept = int(detector.width)
            dropped = values[start:i + 1 - kept]
            found.append((i, float(np.mean(dropped)), len(dropped), detector.estimation, kept))
            start = i + 1
    return found


def test_detections_equal_river_run_directly_over_each_series():
    ts = T0 + np.arange(30_000, dtype=np.int64) * 20
    events = TrafficModel(seed=7).events(ts, [Scenario("latency-regression", REGRESSED, T0 + 15_000 * 20, 3.0)])
    detectors = AdwinDetectors("model")
    found = []
    for start in range(0, len(events), 1_700):  # takes of uneven size: state carries across batches
        found += detectors.update(EventBatch.from_events(events[start:start + 1_700], KEYSETS))
    for feature, value_of in (("latency_ms", lambda e: e["latency_ms"]), ("output_tokens", lambda e: float(e["output_tokens"])),
                              ("error", lambda e: float(e["status"] != "OK"))):
        for model in {e["model"] for e in events}:
            mine = [e for e in events if e["model"] == model]
            expected = direct([value_of(e) for e in mine])
            got = [d for d in found if d.feature == feature and d.series.as_dict()["model"] == model]
            assert [d.ts_ms for d in got] == [mine[i]["ts"] for i, *_ in expected]
            for d, (_, before, n_before, after, n_after) in zip(got, expected):
                assert (d.count_before, d.count_after) == (n_before, n_after)
                assert d.mean_before == pytest.approx(before, rel=1e-9)
                assert d.mean_after == pytest.approx(after, rel=1e-9)
    # The regression is found in the regressed model's latency, soon after it starts, upwards.
    latency = [d for d in found if d.feature == "latency_ms" and d.series.as_dict()["model"] == REGRESSED]
    first = next(d for d in latency if d.ts_ms >= T0 + 15_000 * 20)
    assert first.mean_after > 1.5 * first.mean_before
    assert first.ts_ms - T0 - 15_000 * 20 < 60_000  # within a minute of event time


def test_series_past_the_cap_are_counted_not_watched():
    events = TrafficModel(seed=8).events(T0 + np.arange(600, dtype=np.int64))
    detectors = AdwinDetectors("model", max_series=1)
    detectors.update(EventBatch.from_events(events, KEYSETS))
    first = events[0]["model"]
    assert detectors.unwatched == sum(e["model"] != first for e in events)
