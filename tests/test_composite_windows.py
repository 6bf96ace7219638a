"""Hopping and hourly windows merged from 1-minute panes equal a direct computation."""

import numpy as np
import pytest

from exact import exact_metrics
from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.windows.composite import CompositeWindows, WindowSpec
from inferwatch.processors.windows.tumbling import TumblingWindows
from inferwatch.producers.traffic_model import TrafficModel

T0 = 1_700_002_800_000  # an hour boundary


def exact_hopping(events, size_s, hop_s):
    """Per (series, start) metrics of every size_s window starting every hop_s, directly."""
    out = {}
    for start in range(T0 - size_s * 1000 + hop_s * 1000, T0 + 2 * 3600_000, hop_s * 1000):
        by_series = {}
        for e in events:
            if start <= e["ts"] < start + size_s * 1000:
                by_series.setdefault((e["service"], e["model"], e["model_version"]), []).append(e)
        for series, members in by_series.items():
            out[(series, start)] = exact_metrics(members)
    return out


@pytest.mark.parametrize("text, size_s, hop_s", [("5m/1m", 300, 60), ("1h", 3600, 3600), ("10m/5m", 600, 300)])
def test_merged_windows_equal_exact_computation(text, size_s, hop_s):
    rng = np.random.default_rng(4)
    events = TrafficModel(seed=4).events(np.sort(T0 + rng.integers(0, 90 * 60_000, 4000)))
    spec = WindowSpec.parse(text, 60)
    assert (spec.size_seconds, spec.hop_seconds) == (size_s, hop_s)
    panes = TumblingWindows(60, allowed_lateness_seconds=0, partition_idle_seconds=1)
    composite = CompositeWindows([spec], 60, lateness_ms=0)
    emitted = []
    for i in range(0, len(events), 100):
        panes.add(EventBatch.from_events(events[i:i + 100]), 0, wall_ms=i)
        composite.add_closed_panes(panes.close_due(wall_ms=i))
        emitted += composite.close_due(panes.watermark.current(wall_ms=i))
    # The stream goes quiet for longer than any window: every window closes, each once.
    quiet = 10 * 3600_000
    composite.add_closed_panes(panes.close_due(wall_ms=quiet))
    emitted += composite.close_due(panes.watermark.current(wall_ms=quiet))
    got = {(w.series, w.window_start_ms): w for w in emitted}
    assert len(got) == len(emitted)
    expected = exact_hopping(events, size_s, hop_s)
    assert got.keys() == expected.keys()
    for key, exp in expected.items():
        snap = got[key].snapshot()
        assert (snap["events"], snap["errors"], snap["input_tokens"]) == (exp["events"], exp["errors"], exp["input_tokens"])
        assert snap["cost_usd"] == pytest.approx(exp["cost_usd"], rel=1e-9)
        assert snap["latency_p99_ms"] == pytest.approx(exp["p99"], rel=0.01)
        assert (snap["window_seconds"], snap["hop_seconds"]) == (size_s, hop_s)


@pytest.mark.parametrize("text", ["5x", "90s", "1m", "2m/5m", ""])
def test_bad_window_specs_are_clear_errors(text):
    with pytest.raises(ValueError, match="window"):
        WindowSpec.parse(text, 60)
