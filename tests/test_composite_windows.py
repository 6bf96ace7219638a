"""Hopping and hourly windows merged from 1-minute panes equal a direct computation."""

import numpy as np
import pytest

from exact import KEYSETS, add_partials, assert_window_matches, exact_metrics, series_key
from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.windows.composite import CompositeWindows, WindowSpec
from inferwatch.processors.windows.tumbling import TumblingWindows
from inferwatch.producers.traffic_model import FLEET, TrafficModel

T0 = 1_700_002_800_000  # an hour boundary
PARTITION_OF = {(f.service, f.model): i % 2 for i, f in enumerate(FLEET)}


def exact_hopping(events, size_s, hop_s):
    """Per (series, start) metrics of every size_s window starting every hop_s, directly."""
    out = {}
    for start in range(T0 - size_s * 1000 + hop_s * 1000, T0 + 2 * 3600_000, hop_s * 1000):
        by_series = {}
        for e in events:
            if start <= e["ts"] < start + size_s * 1000:
                for keyset in KEYSETS:
                    by_series.setdefault(series_key(keyset, e), []).append(e)
        for series, members in by_series.items():
            out[(series, start)] = exact_metrics(members)
    return out


@pytest.mark.parametrize("text, size_s, hop_s", [("5m/1m", 300, 60), ("1h", 3600, 3600), ("10m/5m", 600, 300)])
def test_merged_windows_equal_exact_computation(text, size_s, hop_s):
    rng = np.random.default_rng(4)
    events = TrafficModel(seed=4).events(np.sort(T0 + rng.integers(0, 90 * 60_000, 4000)))
    spec = WindowSpec.parse(text, 60)
    assert (spec.size_seconds, spec.hop_seconds) == (size_s, hop_s)
    panes = TumblingWindows(60, allowed_lateness_seconds=0, partition_idle_seconds=1, partitions=(0, 1))
    composite = CompositeWindows([spec], 60, lateness_ms=0)
    emitted = []
    for i in range(0, len(events), 100):
        # Two partitions, keyed like the publisher's messages: tenant and route series span both.
        for partition in (0, 1):
            part = [e for e in events[i:i + 100] if PARTITION_OF[(e["service"], e["model"])] == partition]
            panes.add(EventBatch.from_events(part, KEYSETS), partition, wall_ms=i)
        composite.add_closed_panes(panes.close_due(wall_ms=i))
        emitted += composite.close_due(panes.watermark.current(wall_ms=i))
    # The stream goes quiet for longer than any window: every window closes, each once.
    quiet = 10 * 3600_000
    composite.add_closed_panes(panes.close_due(wall_ms=quiet))
    emitted += composite.close_due(panes.watermark.current(wall_ms=quiet))
    parts = [(w.series, w.window_start_ms, w.source_partition) for w in emitted]
    assert len(set(parts)) == len(parts)  # each window (or partial) once
    assert any(w.source_partition == 1 for w in emitted) and any(w.source_partition == 0 for w in emitted)
    got = add_partials(((w.series, w.window_start_ms), w.snapshot()) for w in emitted)
    expected = exact_hopping(events, size_s, hop_s)
    assert got.keys() == expected.keys()
    for key, exp in expected.items():
        assert_window_matches(key, got[key], exp)
        assert (got[key]["window_seconds"], got[key]["hop_seconds"]) == (size_s, hop_s)


@pytest.mark.parametrize("text", ["5x", "90s", "1m", "2m/5m", ""])
def test_bad_window_specs_are_clear_errors(text):
    with pytest.raises(ValueError, match="window"):
        WindowSpec.parse(text, 60)
