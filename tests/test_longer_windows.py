"""Hopping and hourly windows merged from 1-minute panes equal a direct computation."""

import json

import numpy as np
import pytest

from exact import KEYSETS, add_partials, assert_window_matches, exact_hopping, pane_id
from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.windows.longer import LongerWindows, WindowSpec
from inferwatch.processors.windows.panes import Panes
from inferwatch.producers.traffic_model import FLEET, TrafficModel

T0 = 1_700_002_800_000  # an hour boundary
PARTITION_OF = {(f.service, f.model): i % 2 for i, f in enumerate(FLEET)}


def finalise(panes, store):
    """What the worker does with closed panes: keep each one's state (JSON, as in Redis) by its id."""
    for pane in panes:
        snap = pane.snapshot()
        store[pane_id(snap)] = json.loads(json.dumps(pane.to_state()))
    return panes


def merged(composite, due_windows, store):
    return [composite.from_pane_states(due, [store.get(pane_id(p)) for p in due.pane_ids()]) for due in due_windows]


def feed(windows, composite, events, store, wall_ms):
    """A take of events on two partitions keyed like the publisher's messages: tenant and route
    series span both. Returns the longer windows that closed."""
    for partition in (0, 1):
        part = [e for e in events if PARTITION_OF[(e["service"], e["model"])] == partition]
        windows.add(EventBatch.from_events(part, KEYSETS), partition, wall_ms=wall_ms)
    composite.add_closed_panes(finalise(windows.close_due(wall_ms=wall_ms), store))
    return merged(composite, composite.close_due(windows.watermark.current(wall_ms=wall_ms)), store)


def assert_exact(emitted, events, size_s, hop_s):
    parts = [(w.series, w.window_start_ms, w.source_partition) for w in emitted]
    assert len(set(parts)) == len(parts)  # each window (or partial) once
    assert any(w.source_partition == 1 for w in emitted) and any(w.source_partition == 0 for w in emitted)
    got = add_partials(((w.series, w.window_start_ms), w.snapshot()) for w in emitted)
    expected = exact_hopping(events, size_s, hop_s)
    assert got.keys() == expected.keys()
    for key, exp in expected.items():
        assert_window_matches(key, got[key], exp)
        assert (got[key]["window_seconds"], got[key]["hop_seconds"]) == (size_s, hop_s)


@pytest.mark.parametrize("text, size_s, hop_s", [("5m/1m", 300, 60), ("1h", 3600, 3600), ("10m/5m", 600, 300)])
def test_merged_windows_equal_exact_computation(text, size_s, hop_s):
    rng = np.random.default_rng(4)
    events = TrafficModel(seed=4).events(np.sort(T0 + rng.integers(0, 90 * 60_000, 4000)))
    spec = WindowSpec.parse(text, 60)
    assert (spec.size_seconds, spec.hop_seconds) == (size_s, hop_s)
    panes = Panes(60, allowed_lateness_seconds=0, partition_idle_seconds=1, partitions=(0, 1))
    composite = LongerWindows([spec], 60, lateness_ms=0)
    store, emitted = {}, []
    for i in range(0, len(events), 100):
        emitted += feed(panes, composite, events[i:i + 100], store, wall_ms=i)
    # The stream goes quiet for longer than any window: every window closes, each once.
    emitted += feed(panes, composite, [], store, wall_ms=10 * 3600_000)
    assert_exact(emitted, events, size_s, hop_s)


@pytest.mark.parametrize("text, size_s, hop_s", [("5m/1m", 300, 60), ("1h", 3600, 3600)])
def test_a_new_owner_closes_windows_spanning_a_rebalance_with_every_pane(text, size_s, hop_s):
    """Worker A reads the first 40 minutes, then its partitions move to B, which re-reads what no
    closed pane holds (the uncommitted messages) and closes the windows spanning the handover:
    they hold A's panes too, from their finalised states."""
    rng = np.random.default_rng(6)
    events = TrafficModel(seed=6).events(np.sort(T0 + rng.integers(0, 90 * 60_000, 3000)))
    spec = WindowSpec.parse(text, 60)
    store, emitted = {}, []
    a_panes = Panes(60, allowed_lateness_seconds=0, partition_idle_seconds=3600, partitions=(0, 1))
    a = LongerWindows([spec], 60, lateness_ms=0)
    handover = next(i for i, e in enumerate(events) if e["ts"] >= T0 + 40 * 60_000)
    for i in range(0, handover, 100):
        emitted += feed(a_panes, a, events[i:min(i + 100, handover)], store, wall_ms=i)
    first_open = min(start for _, start, _ in a_panes.open)  # panes A never closed: B re-reads them
    assert first_open < events[handover]["ts"]
    b_panes = Panes(60, allowed_lateness_seconds=0, partition_idle_seconds=3600, partitions=(0, 1))
    b = LongerWindows([spec], 60, lateness_ms=0)
    reread = [e for e in events if e["ts"] >= first_open]
    for i in range(0, len(reread), 100):
        emitted += feed(b_panes, b, reread[i:i + 100], store, wall_ms=i)
    emitted += feed(b_panes, b, [], store, wall_ms=100 * 3600_000)  # quiet: everything closes
    assert_exact([w for w in emitted if w is not None], events, size_s, hop_s)


@pytest.mark.parametrize("text", ["5x", "90s", "1m", "2m/5m", "", "1d", "5m/1m/1m", "5m/"])
def test_bad_window_specs_are_clear_errors(text):
    with pytest.raises(ValueError, match="window"):
        WindowSpec.parse(text, 60)


@pytest.mark.parametrize("text, size_s, hop_s", [("5m/1m", 300, 60), ("1h", 3600, 3600)])
def test_open_windows_hold_every_event_so_far_as_panes_close(text, size_s, hop_s):
    """The live value of a longer window (its closed panes' merge, kept between updates, plus its
    open panes) equals the exact computation over the events read so far, after every take:
    also right after one of its panes closes and joins the closed part."""
    rng = np.random.default_rng(8)
    events = TrafficModel(seed=8).events(np.sort(T0 + rng.integers(0, 25 * 60_000, 3000)))
    panes = Panes(60, allowed_lateness_seconds=0, partition_idle_seconds=3600, partitions=(0,))
    composite = LongerWindows([WindowSpec.parse(text, 60)], 60, lateness_ms=0)
    checked, pane_closings = 0, 0
    for i in range(0, len(events), 150):
        touched = panes.add(EventBatch.from_events(events[i:i + 150], KEYSETS), 0, wall_ms=i).touched
        closed = panes.close_due(wall_ms=i)
        pane_closings += bool(closed)
        composite.add_closed_panes(closed)
        composite.close_due(panes.watermark.current(wall_ms=i))
        expected = exact_hopping(events[:i + 150], size_s, hop_s)
        for window in composite.open_windows(touched, panes.open):
            key = (window.series, window.window_start_ms)
            assert_window_matches(key, window.snapshot(), expected[key])
            checked += 1
    assert pane_closings >= 20 and checked > 100


def test_longer_windows_open_at_a_rebalance_are_finalised_by_the_new_owner_from_the_handoff():
    """Worker A reads the whole stream and closes every pane (so every message is committed), but
    not every 5-minute window; then its partitions move to B, which re-reads nothing. From A's
    handoff (kept panes, emitted windows, partition clocks; through JSON, as in Redis) B finalises
    the windows still open, each once, from the finalised pane states."""
    rng = np.random.default_rng(9)
    events = TrafficModel(seed=9).events(np.sort(T0 + rng.integers(0, 30 * 60_000, 3000)))
    spec = WindowSpec.parse("5m/1m", 60)
    store, emitted = {}, []
    a_panes = Panes(60, allowed_lateness_seconds=0, partition_idle_seconds=1, partitions=(0, 1))
    a = LongerWindows([spec], 60, lateness_ms=0)
    for i in range(0, len(events), 100):
        emitted += feed(a_panes, a, events[i:i + 100], store, wall_ms=i)
    # Quiet for 90 s: event time passes the last pane's end, not the last windows' ends.
    emitted += feed(a_panes, a, [], store, wall_ms=len(events) + 90_000)
    assert not a_panes.open and emitted
    handoffs = json.loads(json.dumps({p: {"clock": a_panes.watermark.clock(p), **a.handoff({p})} for p in (0, 1)}))
    # (A's messages all fed closed panes: nothing for B to re-read, B goes on from A's clocks.)

    b_panes = Panes(60, allowed_lateness_seconds=0, partition_idle_seconds=1, partitions=(0, 1))
    b = LongerWindows([spec], 60, lateness_ms=0)
    for partition, handoff in handoffs.items():
        b_panes.watermark.resume(int(partition), handoff["clock"], pending=False, wall_ms=len(events) + 90_000)
        b.resume(handoff, [store.get(pane_id(p)) for p in b.handoff_pane_ids(handoff)])
    from_b = feed(b_panes, b, [], store, wall_ms=10 * 3600_000)
    assert from_b  # the windows open at the handover: B finalised them, A never will
    assert_exact(emitted + from_b, events, 300, 60)
