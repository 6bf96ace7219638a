"""Every registered window metric (processors/aggregators/), checked by one set of properties:
a batch split in parts and merged gives what the whole batch gives, through the JSON state too;
and the registry's outputs are what the writers derive their fields and columns from."""

import json

import numpy as np
import pytest
from hypothesis import given, settings as hypothesis_settings, strategies as st

from inferwatch.processors.aggregators import outputs, registered
from inferwatch.processors.event_batch import STATUSES, EventBatch
from inferwatch.processors.windows.aggregate import WindowAggregate
from inferwatch.processors.windows.keys import SeriesKey

AGGREGATORS = registered()

optional_float = st.none() | st.floats(0, 1e6, allow_nan=False)
event = st.fixed_dictionaries({
    "ts": st.just(1_700_000_000_000),
    "status": st.sampled_from(STATUSES),
    "latency_ms": st.floats(0, 1e6, allow_nan=False),
    "ttft_ms": optional_float,
    "input_tokens": st.integers(0, 100_000),
    "output_tokens": st.integers(0, 100_000),
    "cost_usd": optional_float,
    "error_type": st.none() | st.sampled_from(["timeout", "rate_limited", "oom"]),
    "topic": st.none() | st.sampled_from(["billing", "technical"]),
    "prompt_chars": st.integers(0, 100_000),
    "response_chars": st.integers(0, 100_000),
    "finish_reason": st.none() | st.sampled_from(["stop", "length", "content_filter"]),
    "quality_scores": st.dictionaries(st.sampled_from(["relevance", "toxicity"]), st.floats(0, 1)),
})


def results(metric, events):
    return metric.result(events, 60)


def assert_same_results(got: dict, expected: dict):
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        if value is None:
            assert got[name] is None, name
        elif isinstance(value, dict):
            assert got[name].keys() == value.keys(), name
            assert got[name] == pytest.approx(value, rel=1e-9), name
        else:
            assert got[name] == pytest.approx(value, rel=1e-9), name


@pytest.mark.parametrize("aggregator", AGGREGATORS, ids=lambda cls: cls.name)
@hypothesis_settings(max_examples=60, deadline=None)
@given(events=st.lists(event, min_size=1, max_size=60), cuts=st.lists(st.integers(0, 60), max_size=3))
def test_merging_the_parts_of_a_split_batch_equals_aggregating_the_whole(aggregator, events, cuts):
    batch = EventBatch.from_events(events, [])
    rows = np.arange(len(events))
    whole = aggregator()
    whole.add(batch, rows)

    merged = aggregator()
    for part in np.split(rows, sorted({min(c, len(events)) for c in cuts})):
        piece = aggregator()
        piece.add(batch, part)
        # Through the state the longer windows merge panes from (JSON in Redis).
        merged.merge(aggregator.from_state(json.loads(json.dumps(piece.to_state()))))
    assert_same_results(results(merged, len(events)), results(whole, len(events)))
    assert [o.name for o in aggregator.outputs] == list(results(whole, len(events)))


def test_a_window_snapshot_has_every_output_and_a_partition_part_none_of_the_sketches():
    series = SeriesKey("tenant", ("tenant_id",), ("acme",))
    whole, part = WindowAggregate(series, 0, 60), WindowAggregate(series, 0, 60, source_partition=2)
    batch = EventBatch.from_events([{
        "ts": 0, "status": "OK", "latency_ms": 120.0, "ttft_ms": 30.0, "input_tokens": 10, "output_tokens": 5,
        "cost_usd": 0.01, "error_type": None, "topic": None, "finish_reason": "stop", "prompt_chars": 40, "response_chars": 20,
        "quality_scores": {}}], [])
    whole.add(batch, np.arange(1), 0)
    part.add(batch, np.arange(1), 2)
    for window in (whole, part):
        assert {o.name for o in outputs()} <= window.snapshot().keys()
    assert whole.snapshot()["latency_p99_ms"] == pytest.approx(120.0, rel=0.01)
    sketched = [o.name for cls in AGGREGATORS if cls.whole_series_only for o in cls.outputs]
    assert sketched and all(part.snapshot()[name] is None for name in sketched)
    assert part.snapshot()["input_tokens"] == 10


def test_a_state_of_another_version_or_without_a_metric_contributes_nothing_to_it():
    series = SeriesKey("model", ("service", "model", "model_version"), ("s", "m", "v"))
    window = WindowAggregate(series, 0, 60)
    batch = EventBatch.from_events([{
        "ts": 0, "status": "ERROR", "latency_ms": 5.0, "ttft_ms": None, "input_tokens": 1, "output_tokens": 2,
        "cost_usd": None, "error_type": "oom", "topic": None, "finish_reason": None, "prompt_chars": 4, "response_chars": 0,
        "quality_scores": {}}], [])
    window.add(batch, np.arange(1), 0)
    state = window.to_state()
    state["metrics"]["status"][0] += 1  # written by a newer version of that aggregator
    del state["metrics"]["tokens"]  # written before that aggregator existed
    restored = WindowAggregate.from_state(series, 0, 60, state).snapshot()
    assert (restored["events"], restored["errors"], restored["input_tokens"]) == (1, 0, 0)
    assert restored["error_types"] == {"oom": 1}
