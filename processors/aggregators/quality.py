"""Quality scores the producer attached (event `quality_scores`): mean and count per name."""

from __future__ import annotations

import numpy as np

from inferwatch.processors.aggregators.base import Aggregator, Output
from inferwatch.processors.event_batch import EventBatch


class QualityScores(Aggregator):
    name = "quality"
    order = 70
    outputs = (Output("quality_means", "map_f64", redis_field="quality:{}:mean"),
               Output("quality_counts", "map_u64", redis_field="quality:{}:count"))

    def __init__(self, sums: dict[str, float] | None = None, counts: dict[str, int] | None = None):
        self.sums = {} if sums is None else sums
        self.counts = {} if counts is None else counts

    def add(self, batch: EventBatch, rows: np.ndarray) -> None:
        scores = batch.quality_scores
        for i in rows.tolist():
            for name, value in scores[i].items():  # empty for most events
                self.sums[name] = self.sums.get(name, 0.0) + value
                self.counts[name] = self.counts.get(name, 0) + 1

    def merge(self, other: QualityScores) -> None:
        for name, value in other.sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        for name, n in other.counts.items():
            self.counts[name] = self.counts.get(name, 0) + n

    def to_state(self) -> dict:
        return {"sums": self.sums, "counts": self.counts}

    @classmethod
    def from_state(cls, state: dict) -> QualityScores:
        return cls(dict(state["sums"]), dict(state["counts"]))

    def result(self, events: int, window_seconds: int) -> dict:
        return {"quality_means": {k: self.sums[k] / n for k, n in self.counts.items()},
                "quality_counts": dict(self.counts)}
