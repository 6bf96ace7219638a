"""The series cap: at most max_series series of a key set have open windows, the events of any
further series go to the key set's overflow series ("__other__" values), exactly; closing
windows frees slots. Pure logic."""

import numpy as np
import pytest

from exact import KEYSETS, exact_windows, make_feedback, series_key
from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.windows.longer import LongerWindows, WindowSpec
from inferwatch.processors.windows.feedback import FeedbackWindows
from inferwatch.processors.windows.panes import Panes
from inferwatch.producers.traffic_model import TrafficModel

WINDOW_S = 60
T0 = 1_700_000_040_000  # a window boundary
CAP = 3
OTHER = "__other__"
MODELS = [f"model-{i}" for i in range(10)]


def make_events(models, start_ms, n, seed):
    """n events in the window from start_ms, one service and version: one model series per model.
    The first len(models) events name the models in the given order, so they take slots in it."""
    rng = np.random.default_rng(seed)
    events = TrafficModel(seed=seed).events(np.sort(start_ms + rng.integers(0, WINDOW_S * 1000, n)))
    for i, e in enumerate(events):
        e.update(service="chat-api", model_version="v1",
                 model=models[i] if i < len(models) else models[rng.integers(len(models))])
    return events


def from_events(events):
    return EventBatch.from_events(events, KEYSETS)


def capped_key(keyset, event, own):
    """The event's series, or the overflow series once `own` holds CAP others (first come, first served)."""
    key = series_key(keyset, event)
    if key not in own and len(own) < CAP:
        own.append(key)
    return key if key in own else series_key(keyset, dict.fromkeys(keyset.fields, OTHER))


def sums(events):
    """Events, tokens and cost of a list of events, computed directly."""
    return {"events": len(events), "input_tokens": sum(e["input_tokens"] for e in events),
            "output_tokens": sum(e["output_tokens"] for e in events),
            "cost_usd": sum(e["cost_usd"] or 0.0 for e in events)}


def window_sums(windows):
    """(series, start) -> events, tokens and cost of its windows (one per source partition)."""
    out = {}
    for w in windows:
        total = out.setdefault((w.series, w.window_start_ms),
                               {"events": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
        snapshot = w.snapshot()
        for name in total:
            total[name] += snapshot[name]
    return out


def assert_sums_equal(got, expected):
    assert got.keys() == expected.keys()
    for key, exp in expected.items():
        assert {k: got[key][k] for k in ("events", "input_tokens", "output_tokens")} == \
               {k: exp[k] for k in ("events", "input_tokens", "output_tokens")}, key
        assert got[key]["cost_usd"] == pytest.approx(exp["cost_usd"], rel=1e-9), key


def test_series_beyond_the_cap_are_aggregated_exactly_in_the_overflow_series():
    events = make_events(MODELS, T0, 600, seed=1)
    windows = Panes(WINDOW_S, allowed_lateness_seconds=0, max_series=CAP)
    windows.add(from_events(events), 0, wall_ms=0)

    expected, folded = {}, {}
    for keyset in KEYSETS:
        own = []
        for e in events:
            key = capped_key(keyset, e, own)
            expected.setdefault((key, T0), []).append(e)
            folded[keyset.name] = folded.get(keyset.name, 0) + (key.values[0] == OTHER)
    assert_sums_equal(window_sums(windows.open.values()), {key: sums(group) for key, group in expected.items()})

    model_series = {w.series.values[1] for w in windows.open.values() if w.series.keyset == "model"}
    assert model_series == {*MODELS[:CAP], OTHER}
    for keyset in KEYSETS:  # the batch's totals in each key set: no event lost or counted twice
        parts = window_sums(w for w in windows.open.values() if w.series.keyset == keyset.name).values()
        totals = {name: sum(part[name] for part in parts) for name in ("events", "input_tokens", "output_tokens")}
        assert totals == {name: value for name, value in sums(events).items() if name != "cost_usd"}
        assert sum(part["cost_usd"] for part in parts) == pytest.approx(sums(events)["cost_usd"], rel=1e-9)
    assert windows.take_overflow_counts() == {name: n for name, n in folded.items() if n}
    assert windows.take_overflow_counts() == {}
    assert folded["route"] == 0  # three routes: under the cap, untouched


def test_closed_windows_free_their_series_slots():
    windows = Panes(WINDOW_S, allowed_lateness_seconds=0, partition_idle_seconds=60, max_series=CAP)
    first = make_events(MODELS, T0, 300, seed=2)
    windows.add(from_events(first), 0, wall_ms=0)
    # The next window's events of other series, while the first window's series hold every slot.
    newcomers = MODELS[CAP:][::-1]
    second = make_events(newcomers, T0 + 60_000, 200, seed=3)
    windows.add(from_events(second), 0, wall_ms=1)
    assert {k[0].values[1] for k in windows.open if k[0].keyset == "model" and k[1] == T0 + 60_000} == {OTHER}

    closed = windows.close_due(wall_ms=2)  # event time is in the second window now
    assert {w.window_start_ms for w in closed} == {T0}
    third = make_events(newcomers[:CAP + 1], T0 + 60_000, 100, seed=4)
    windows.add(from_events(third), 0, wall_ms=3)
    model_windows = {w.series.values[1]: w for w in windows.open.values() if w.series.keyset == "model"}
    assert model_windows.keys() == {*newcomers[:CAP], OTHER}
    for model in newcomers[:CAP]:
        assert model_windows[model].events == sum(e["model"] == model for e in third)
    assert model_windows[OTHER].events == len(second) + sum(e["model"] == newcomers[CAP] for e in third)


def test_random_series_never_hold_more_than_the_cap_of_open_windows():
    """Random names from a producer, on two partitions, over several windows and late events."""
    windows = Panes(WINDOW_S, allowed_lateness_seconds=0, partition_idle_seconds=60,
                              partitions=(0, 1), max_series=CAP)
    rng = np.random.default_rng(5)
    on_time, closed = 0, []
    for i in range(40):
        events = make_events([f"m{rng.integers(10**9)}" for _ in range(50)], T0 + (i // 4) * 60_000, 100, seed=i)
        for e in events:
            e["route"] = f"/r{rng.integers(10**9)}"
        result = windows.add(from_events(events), i % 2, wall_ms=i)
        on_time += result.added
        closed += windows.close_due(wall_ms=i)
        for keyset in KEYSETS:
            series = {k[0] for k in windows.open if k[0].keyset == keyset.name and k[0].values[0] != OTHER}
            assert len(series) <= CAP
            per_pane = {}
            for series_, start, source_partition in windows.open:
                if series_.keyset == keyset.name:
                    per_pane[start, source_partition] = per_pane.get((start, source_partition), 0) + 1
            assert max(per_pane.values()) <= CAP + 1
    closed += windows.close_due(wall_ms=3600_000)
    assert windows.open == {}
    for keyset in KEYSETS:
        assert sum(w.events for w in closed if w.series.keyset == keyset.name) == on_time

    # Late events of 50 new series: late_by_series keeps CAP of them per key set, the rest as the overflow.
    late_events = make_events([f"late-{i}" for i in range(50)], T0, 200, seed=99)
    assert windows.add(from_events(late_events), 0, wall_ms=3600_001).late == len(late_events)
    late = windows.take_late_counts()
    for keyset in KEYSETS:
        counted = {key: n for key, n in late.items() if key.keyset == keyset.name}
        assert len([key for key in counted if key.values[0] != OTHER]) <= CAP
        assert sum(counted.values()) == len(late_events)
    assert windows.take_overflow_counts()["model"] > 0


def test_without_a_cap_every_series_has_its_own_windows_as_before():
    events = make_events(MODELS, T0, 600, seed=6)
    default, unbounded = Panes(WINDOW_S, 0), Panes(WINDOW_S, 0, max_series=None)
    for windows in (default, unbounded):
        windows.add(from_events(events), 0, wall_ms=0)
        assert windows.take_overflow_counts() == {}
    assert default.open.keys() == unbounded.open.keys()
    assert [w.snapshot() for w in default.open.values()] == [w.snapshot() for w in unbounded.open.values()]
    expected = exact_windows(events, WINDOW_S)
    assert {(w.series, w.window_start_ms) for w in unbounded.open.values()} == expected.keys()
    for w in unbounded.open.values():
        assert w.events == expected[w.series, w.window_start_ms]["events"]


def feedback_records(models, start_ms, n, seed):
    records = make_feedback(n, start_ms, WINDOW_S * 1000, seed=seed)
    rng = np.random.default_rng(seed)
    for i, r in enumerate(records):
        r.update(service="chat-api", model=models[i] if i < len(models) else models[rng.integers(len(models))])
    return records


def feedback_counts(records):
    out = {}
    for r in records:
        counts = out.setdefault((r["service"], r["model"], r["ts"] - r["ts"] % (WINDOW_S * 1000)),
                                {"feedback": 0, "thumbs_up": 0, "thumbs_down": 0})
        counts["feedback"] += 1
        counts["thumbs_up"] += r["thumbs"] == 1
        counts["thumbs_down"] += r["thumbs"] == -1
    return out


def test_feedback_series_beyond_the_cap_are_counted_exactly_in_the_overflow_series():
    windows = FeedbackWindows(WINDOW_S, allowed_lateness_seconds=0, partition_idle_seconds=60, max_series=CAP)
    first = feedback_records(MODELS, T0, 400, seed=7)
    windows.add(first, 0, wall_ms=0)
    own = []
    for r in first:  # computed straight from the records: the first CAP models keep their name
        if r["model"] not in own and len(own) < CAP:
            own.append(r["model"])
    expected = feedback_counts([{**r, **({} if r["model"] in own else {"service": OTHER, "model": OTHER})}
                                for r in first])
    got = {(w.service, w.model, w.window_start_ms): {"feedback": w.feedback, "thumbs_up": w.thumbs_up,
                                                     "thumbs_down": w.thumbs_down} for w in windows.open.values()}
    assert got == expected
    assert {w.model for w in windows.open.values()} == {*MODELS[:CAP], OTHER}
    assert windows.take_overflow_counts() == {"feedback": sum(r["model"] not in own for r in first)}
    assert windows.take_overflow_counts() == {}

    # Other series in the next window while the first is open: all overflow; once it closed, slots are free.
    newcomers = MODELS[CAP:][::-1]
    second = feedback_records(newcomers, T0 + 60_000, 50, seed=8)
    windows.add(second, 0, wall_ms=1)
    assert {w.model for w in windows.open.values() if w.window_start_ms == T0 + 60_000} == {OTHER}
    assert {w.window_start_ms for w in windows.close_due(wall_ms=2)} == {T0}
    third = feedback_records(newcomers[:CAP + 1], T0 + 60_000, 50, seed=9)
    windows.add(third, 0, wall_ms=3)
    by_model = {w.model: w for w in windows.open.values()}
    assert by_model.keys() == {*newcomers[:CAP], OTHER}
    for model in newcomers[:CAP]:
        assert by_model[model].feedback == sum(r["model"] == model for r in third)
    assert by_model[OTHER].feedback == len(second) + sum(r["model"] == newcomers[CAP] for r in third)


def test_feedback_without_a_cap_keeps_every_series():
    records = feedback_records(MODELS, T0, 300, seed=10)
    windows = FeedbackWindows(WINDOW_S, allowed_lateness_seconds=0, partition_idle_seconds=60)
    windows.add(records, 0, wall_ms=0)
    assert {w.model for w in windows.open.values()} == set(MODELS)
    assert windows.take_overflow_counts() == {}


def minutes_of_random_models(seed):
    """30 minutes, each of 20 models never seen before, added to capped panes: per minute
    (minute, panes, their longer windows, the add's result)."""
    panes = Panes(WINDOW_S, allowed_lateness_seconds=0, partition_idle_seconds=3600, max_series=CAP)
    composite = LongerWindows([WindowSpec.parse("5m/1m", WINDOW_S)], WINDOW_S, lateness_ms=0)
    rng = np.random.default_rng(seed)
    for minute in range(30):
        events = make_events([f"m{rng.integers(10**9)}" for _ in range(20)], T0 + minute * 60_000, 50, seed=minute)
        yield minute, panes, composite, panes.add(from_events(events), 0, wall_ms=minute)


def test_longer_windows_forget_series_once_their_panes_are_let_go():
    """Longer windows keep closed panes for their size only: series gone quiet leave nothing behind."""
    streams = []
    for minute, panes, composite, result in minutes_of_random_models(seed=11):
        composite.open_windows(result.touched, panes.open)
        composite.add_closed_panes(panes.close_due(wall_ms=minute))
        composite.close_due(panes.watermark.current(wall_ms=minute))
        streams.append(len(composite._closed_panes))
    # At most (CAP + 1) series per key set per pane, over the 5 minutes a pane is kept.
    assert max(streams) <= len(KEYSETS) * (CAP + 1) * 6
    assert max(streams[-10:]) <= max(streams[:20])


def test_longer_windows_forget_merges_of_windows_whose_panes_were_dropped_open():
    merges = []
    for minute, panes, composite, result in minutes_of_random_models(seed=12):
        composite.open_windows(result.touched, panes.open)  # a live update of the open panes
        composite.close_due(panes.watermark.current(wall_ms=minute))
        panes.drop_partitions({0})  # then a rebalance takes the partition, panes still open
        composite.drop_partitions({0})
        merges.append(len(composite._closed_merges))
    assert max(merges[-10:]) <= max(merges[:10])
