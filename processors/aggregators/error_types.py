"""Failed events per error type (the names come from producers: capped by event validation)."""

from __future__ import annotations

import numpy as np

from inferwatch.processors.aggregators.base import Aggregator, Output
from inferwatch.processors.event_batch import EventBatch


class ErrorTypes(Aggregator):
    name = "error_types"
    order = 60
    outputs = (Output("error_types", "map_u64", redis_field="error_type:{}"),)

    def __init__(self, counts: dict[str, int] | None = None):
        self.counts = {} if counts is None else counts

    def add(self, batch: EventBatch, rows: np.ndarray) -> None:
        failed = batch.error_type[rows]
        failed = failed[failed != None]  # noqa: E711 (elementwise on an object array)
        if failed.size:
            for name, n in zip(*np.unique(failed.astype(str), return_counts=True)):
                self.counts[name] = self.counts.get(name, 0) + int(n)

    def merge(self, other: ErrorTypes) -> None:
        for name, n in other.counts.items():
            self.counts[name] = self.counts.get(name, 0) + n

    def to_state(self) -> dict[str, int]:
        return self.counts

    @classmethod
    def from_state(cls, state: dict[str, int]) -> ErrorTypes:
        return cls(dict(state))

    def result(self, events: int, window_seconds: int) -> dict:
        return {"error_types": dict(self.counts)}

