"""Time per output token (ms) after the first, p50 and p95: the decode speed users feel while a
response streams, apart from the queueing and prefill that TTFT shows. Per streamed response with
more than one output token: (latency - TTFT) / (output tokens - 1); a response whose TTFT exceeds
its latency (the producer's clocks disagree) is left out."""

from __future__ import annotations

import numpy as np

from inferwatch.processors.aggregators.quantiles import QuantileSketch, percentile_outputs
from inferwatch.processors.event_batch import EventBatch


class TimePerOutputToken(QuantileSketch):
    name = "tpot"
    order = 35
    drift_feature = "tpot_ms"
    percentiles = (0.50, 0.95)
    outputs = percentile_outputs("tpot", percentiles, shown=percentiles)

    def values(self, batch: EventBatch, rows: np.ndarray) -> np.ndarray:
        decode_ms = batch.latency_ms[rows] - batch.ttft_ms[rows]  # NaN where not streamed
        tokens = batch.output_tokens[rows]
        kept = (tokens > 1) & (decode_ms >= 0)  # NaN >= 0 is False
        return decode_ms[kept] / (tokens[kept] - 1)
