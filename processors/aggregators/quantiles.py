"""The shared base of percentile metrics: one value per event into a mergeable sketch."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from inferwatch.processors.aggregators.base import Aggregator, Output
from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.sketches.latency_sketch import LatencySketch


def percentile_outputs(prefix: str, percentiles: tuple[float, ...], shown: tuple[float, ...] = (),
                       unit: str = "_ms") -> tuple[Output, ...]:
    """`<prefix>_p<NN><unit>` for each percentile: None for a window without values."""
    return tuple(Output(f"{prefix}_p{round(q * 100)}{unit}", "f64", nullable=True, shown=q in shown)
                 for q in percentiles)


class QuantileSketch(Aggregator):
    """Subclasses name the metric, its `percentiles` and outputs (percentile_outputs, in the same
    order), and which value each event contributes: an EventBatch `column`, or `values`."""

    whole_series_only = True  # sketches of a series' partition parts are not merged anywhere
    percentiles: ClassVar[tuple[float, ...]]
    # The drift feature this sketch's values are (processors/drift/): a reference profile of that
    # name is compared with the window's sketch. None: not a drift feature.
    drift_feature: ClassVar[str | None] = None
    column: ClassVar[str] = ""  # the EventBatch column of the values, when `values` is not overridden

    def __init__(self, sketch: LatencySketch | None = None):
        self.sketch = LatencySketch() if sketch is None else sketch

    @property
    def drift_sample(self) -> LatencySketch:
        return self.sketch

    def values(self, batch: EventBatch, rows: np.ndarray) -> np.ndarray:
        """The events' values (non-negative; events without one left out)."""
        return getattr(batch, self.column)[rows]

    def add(self, batch: EventBatch, rows: np.ndarray) -> None:
        self.sketch.add_many(self.values(batch, rows))

    def merge(self, other: QuantileSketch) -> None:
        self.sketch.merge(other.sketch)

    def to_state(self) -> dict:
        return self.sketch.to_state()

    @classmethod
    def from_state(cls, state: dict) -> QuantileSketch:
        return cls(LatencySketch.from_state(state))

    def result(self, events: int, window_seconds: int) -> dict:
        names = [o.name for o in self.outputs[:len(self.percentiles)]]
        values = self.sketch.quantiles(self.percentiles) if self.sketch.count else [None] * len(names)
        return dict(zip(names, values))
