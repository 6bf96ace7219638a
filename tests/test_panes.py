import numpy as np
import pytest

from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.windows.panes import Panes
from inferwatch.producers.traffic_model import TrafficModel
from exact import KEYSETS, add_partials, assert_window_matches, exact_windows, series_key

WINDOW_S = 60
T0 = 1_700_000_040_000  # a window boundary


def assert_matches(windows, expected):
    got = add_partials(((w.series, w.window_start_ms), w.snapshot()) for w in windows)
    assert got.keys() == expected.keys()
    for key, exp in expected.items():
        snap = got[key]
        assert_window_matches(key, snap, exp)
        if snap["parts"] == 1:  # derived metrics of a window as computed (not of a sum)
            assert snap["error_rate"] == exp["errors"] / exp["events"]
            assert snap["input_tokens_mean"] == exp["input_tokens"] / exp["events"]
        if snap["latency_max_ms"] is not None:
            assert snap["latency_max_ms"] == exp["max"]


def from_events(events):
    return EventBatch.from_events(events, KEYSETS)


def make_events(n, span_ms, seed=5):
    rng = np.random.default_rng(seed)
    ts = np.sort(T0 + rng.integers(0, span_ms, n))
    return TrafficModel(seed=seed).events(ts)


def test_in_order_stream_matches_exact_computation_and_closes_every_window():
    events = make_events(6000, 5 * 60_000)
    windows = Panes(WINDOW_S, allowed_lateness_seconds=2, partition_idle_seconds=5)
    closed = []
    for i in range(0, len(events), 250):
        windows.add(from_events(events[i:i + 250]), partition=0, wall_ms=float(i))
        closed += windows.close_due(wall_ms=float(i))
    # The last window of each series, in every key set, is still open.
    assert len(windows.open) == len({series_key(k, e) for e in events for k in KEYSETS if e["ts"] >= T0 + 4 * 60_000})
    # The stream goes quiet: once the partition is idle, event time follows the wall clock.
    last_wall = float(len(events) - len(events) % 250)
    last_window_end = T0 + 5 * 60_000
    assert windows.close_due(wall_ms=last_wall + 4_000) == []
    closed += windows.close_due(wall_ms=last_wall + 5_000 + (last_window_end - events[-1]["ts"]) + 2_000)
    assert windows.open == {}
    assert_matches(closed, exact_windows(events))


def test_lagging_partition_is_not_late():
    # Partition 1 is read a whole window behind partition 0: the watermark is the slower one.
    events = make_events(2000, 3 * 60_000)
    p0, p1 = events[::2], events[1::2]
    windows = Panes(WINDOW_S, allowed_lateness_seconds=0, partition_idle_seconds=60, partitions=(0, 1))
    windows.add(from_events(p0[:500]), partition=0, wall_ms=0)
    windows.add(from_events(p1[:100]), partition=1, wall_ms=0)
    windows.add(from_events(p0[500:]), partition=0, wall_ms=1)
    result = windows.add(from_events(p1[100:]), partition=1, wall_ms=2)
    assert result.late == 0
    assert_matches(list(windows.open.values()), exact_windows(events))


def test_late_events_are_counted_not_added():
    events = make_events(1000, 2 * 60_000)
    windows = Panes(WINDOW_S, allowed_lateness_seconds=5)
    first_window = [e for e in events if e["ts"] < T0 + 60_000]
    second_window = [e for e in events if e["ts"] >= T0 + 60_000]
    windows.add(from_events(first_window[:-10]), 0, wall_ms=0)
    windows.add(from_events(second_window), 0, wall_ms=0)
    closed = windows.close_due(wall_ms=0)
    series = {series_key(k, e) for e in first_window[:-10] for k in KEYSETS}
    assert [w.window_start_ms for w in closed] == [T0] * len(series)
    late = windows.add(from_events(first_window[-10:]), 0, wall_ms=1)
    assert late.late == 10 and late.added == 0
    counted = windows.take_late_counts()
    assert sum(counted.values()) == 10 * len(KEYSETS)  # each late event, in each of its series
    assert windows.take_late_counts() == {}
    assert_matches(closed, exact_windows(first_window[:-10]))


def test_quality_scores_are_averaged_per_name():
    events = make_events(30, 10_000)
    for i, e in enumerate(events):
        e["quality_scores"] = {"faithfulness": i / 30} if i % 3 == 0 else {}
    windows = Panes(WINDOW_S, allowed_lateness_seconds=0)
    windows.add(from_events(events), 0, wall_ms=0)
    scored = {}
    for e in events:
        for name, value in e["quality_scores"].items():
            for keyset in KEYSETS:
                scored.setdefault(series_key(keyset, e), []).append(value)
    for window in windows.open.values():
        snap = window.snapshot()
        values = scored.get(window.series, [])
        assert snap["quality_counts"].get("faithfulness", 0) == len(values)
        if values:
            assert snap["quality_means"]["faithfulness"] == pytest.approx(np.mean(values))


def test_window_within_lateness_still_accepts_events():
    events = make_events(400, 2 * 60_000)
    windows = Panes(WINDOW_S, allowed_lateness_seconds=30)
    straggler = next(e for e in events if e["ts"] < T0 + 60_000)
    rest = [e for e in events if e is not straggler and e["ts"] < T0 + 80_000]
    windows.add(from_events(rest), 0, wall_ms=0)
    result = windows.add(from_events([straggler]), 0, wall_ms=0)
    assert result.late == 0 and result.added == 1


def test_revoked_partitions_drop_their_windows_and_stop_holding_event_time():
    events = make_events(600, 2 * 60_000)
    windows = Panes(WINDOW_S, allowed_lateness_seconds=0, partition_idle_seconds=60, partitions=(0, 1))
    windows.add(from_events(events[:300]), 0, wall_ms=0)
    windows.add(from_events(events[300:]), 1, wall_ms=0)
    before = windows.watermark.current(0)
    windows.drop_partitions({1})
    assert all(w.partitions == {0} for w in windows.open.values())
    assert windows.watermark.current(0) >= before
    windows.drop_partitions({0})
    assert windows.open == {}
    assert windows.watermark.current(1) >= before  # nothing read any more: event time stands


def test_a_partition_handed_over_redelivers_its_older_events_on_time_and_if_silent_moves_on():
    """After a rebalance the new owner re-reads a partition from its committed offset, older than
    the previous owner's newest event: those events are not late, even when the new owner's other
    partitions are further on in event time. A handed-over partition with nothing to re-read goes
    on from the previous owner's clock, so its windows close on a quiet stream."""
    events = make_events(2000, 3 * 60_000)
    old = Panes(WINDOW_S, allowed_lateness_seconds=2, partition_idle_seconds=5, partitions=(0,))
    old.add(from_events(events), 0, wall_ms=0)
    clock = old.watermark.clock(0)
    assert clock[0] == events[-1]["ts"]

    new = Panes(WINDOW_S, allowed_lateness_seconds=2, partition_idle_seconds=5, partitions=(0, 1))
    ahead = [{**e, "ts": e["ts"] + 5 * 60_000} for e in make_events(500, 60_000, seed=6)]
    new.add(from_events(ahead), 1, wall_ms=100)  # its other partition, further on in event time
    new.watermark.resume(0, clock, pending=True, wall_ms=200)
    assert new.close_due(wall_ms=20_000) == []  # held still: partition 0 is to re-deliver
    result = new.add(from_events(events), 0, wall_ms=20_100)  # the re-read, from the oldest event on
    assert result.late == 0 and result.added == len(events)

    silent = Panes(WINDOW_S, allowed_lateness_seconds=2, partition_idle_seconds=5, partitions=(0,))
    silent.watermark.resume(0, clock, pending=False, wall_ms=200)
    assert silent.watermark.current(wall_ms=1000) is None  # it may still deliver
    assert silent.watermark.current(wall_ms=60_000) == clock[0] + 60_000 - 200  # quiet: from there, with the wall clock
