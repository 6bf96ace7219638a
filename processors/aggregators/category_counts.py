"""The shared base of per-category counts: events per value of one string column (values come
from producers: capped in length by event validation, in number by nothing, so the counts of a
window are as many as the names it saw)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from inferwatch.processors.aggregators.base import Aggregator
from inferwatch.processors.event_batch import EventBatch


class CategoryCounts(Aggregator):
    """Subclasses name the metric, its one map output and the EventBatch `column` (an object
    column; events whose value is None are not counted)."""

    column: ClassVar[str]
    # The drift feature these counts are (processors/drift/): a categorical reference profile of
    # that name is compared with the window's counts. None: not a drift feature.
    drift_feature: ClassVar[str | None] = None

    def __init__(self, counts: dict[str, int] | None = None):
        self.counts = {} if counts is None else counts

    @property
    def drift_sample(self) -> dict[str, int]:
        return self.counts

    def add(self, batch: EventBatch, rows: np.ndarray) -> None:
        values = getattr(batch, self.column)[rows]
        values = values[values != None]  # noqa: E711 (elementwise on an object array)
        if values.size:
            for name, n in zip(*np.unique(values.astype(str), return_counts=True)):
                self.counts[name] = self.counts.get(name, 0) + int(n)

    def merge(self, other: CategoryCounts) -> None:
        for name, n in other.counts.items():
            self.counts[name] = self.counts.get(name, 0) + n

    def to_state(self) -> dict[str, int]:
        return self.counts

    @classmethod
    def from_state(cls, state: dict[str, int]) -> CategoryCounts:
        return cls(dict(state))

    def result(self, events: int, window_seconds: int) -> dict:
        return {self.outputs[0].name: dict(self.counts)}
