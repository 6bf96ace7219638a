"""Time to first token percentiles (ms), over the streamed responses (events with a ttft_ms)."""

from __future__ import annotations

import numpy as np

from inferwatch.processors.aggregators.quantiles import QuantileSketch, percentile_outputs
from inferwatch.processors.event_batch import EventBatch


class TimeToFirstToken(QuantileSketch):
    name = "ttft"
    order = 30
    drift_feature = "ttft_ms"
    percentiles = (0.50, 0.95, 0.99)
    outputs = percentile_outputs("ttft", percentiles)

    def values(self, batch: EventBatch, rows: np.ndarray) -> np.ndarray:
        ttft = batch.ttft_ms[rows]
        return ttft[~np.isnan(ttft)]
