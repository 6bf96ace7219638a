"""Time per output token: (latency - TTFT) / (output tokens - 1) per streamed response, its
percentiles within the sketch's 1 % of the exact ones."""

import numpy as np
import pytest

from inferwatch.processors.aggregators.tpot import TimePerOutputToken
from inferwatch.processors.event_batch import EventBatch
from inferwatch.producers.traffic_model import TrafficModel


def test_tpot_percentiles_match_the_exact_ones_over_streamed_multi_token_responses():
    events = TrafficModel(seed=3).events(np.arange(2000, dtype=np.int64) * 30 + 1_700_000_000_000)
    events[0] = {**events[0], "ttft_ms": events[0]["latency_ms"] + 5.0}  # clocks disagree: left out
    exact = np.array([(e["latency_ms"] - e["ttft_ms"]) / (e["output_tokens"] - 1) for e in events
                      if e["ttft_ms"] is not None and e["output_tokens"] > 1 and e["latency_ms"] >= e["ttft_ms"]])
    assert 100 < exact.size < len(events)  # streamed and not, one token and more: both kinds present

    metric = TimePerOutputToken()
    metric.add(EventBatch.from_events(events, []), np.arange(len(events)))
    result = metric.result(len(events), 60)
    for q, name in ((0.50, "tpot_p50_ms"), (0.95, "tpot_p95_ms")):
        assert result[name] == pytest.approx(np.quantile(exact, q, method="lower"), rel=0.01)


def test_no_streamed_response_no_tpot():
    events = TrafficModel(seed=4).events(np.arange(10, dtype=np.int64) + 1_700_000_000_000)
    events = [{**e, "ttft_ms": None} for e in events]
    metric = TimePerOutputToken()
    metric.add(EventBatch.from_events(events, []), np.arange(len(events)))
    assert metric.result(len(events), 60) == {"tpot_p50_ms": None, "tpot_p95_ms": None}
