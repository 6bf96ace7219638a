"""End-to-end latency percentiles and maximum (ms), what the p99 alert rule watches."""

from __future__ import annotations

from inferwatch.processors.aggregators.base import Output
from inferwatch.processors.aggregators.quantiles import QuantileSketch, percentile_outputs


class Latency(QuantileSketch):
    name = "latency"
    order = 20
    drift_feature = column = "latency_ms"
    percentiles = (0.50, 0.90, 0.95, 0.99)
    outputs = (*percentile_outputs("latency", percentiles, shown=(0.50, 0.95, 0.99)),
               Output("latency_max_ms", "f64", nullable=True))

    def result(self, events: int, window_seconds: int) -> dict:
        return {**super().result(events, window_seconds),
                "latency_max_ms": self.sketch.max if self.sketch.count else None}
