"""Cost in USD (events without a cost add nothing)."""

from __future__ import annotations

import numpy as np

from inferwatch.processors.aggregators.base import Aggregator, Output
from inferwatch.processors.event_batch import EventBatch


class Cost(Aggregator):
    name = "cost"
    order = 50
    outputs = (Output("cost_usd", "f64", shown=True),)

    def __init__(self, cost_usd: float = 0.0):
        self.cost_usd = cost_usd

    def add(self, batch: EventBatch, rows: np.ndarray) -> None:
        self.cost_usd += float(np.nansum(batch.cost_usd[rows]))

    def merge(self, other: Cost) -> None:
        self.cost_usd += other.cost_usd

    def to_state(self) -> float:
        return self.cost_usd

    @classmethod
    def from_state(cls, state: float) -> Cost:
        return cls(state)

    def result(self, events: int, window_seconds: int) -> dict:
        return {"cost_usd": self.cost_usd}
