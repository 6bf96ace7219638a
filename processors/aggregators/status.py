"""Events per status (OK, ERROR, TIMEOUT, FILTERED) and the error and timeout rates."""

from __future__ import annotations

import numpy as np

from inferwatch.processors.aggregators.base import Aggregator, Output
from inferwatch.processors.event_batch import STATUS_CODE, STATUSES, EventBatch


class StatusCounts(Aggregator):
    name = "status"
    order = 10
    outputs = (
        Output("ok", "u64"), Output("errors", "u64", shown=True), Output("timeouts", "u64", shown=True),
        Output("filtered", "u64"),
        Output("error_rate", "f64", stored=False), Output("timeout_rate", "f64", stored=False),
    )

    def __init__(self, counts: np.ndarray | None = None):
        self.counts = np.zeros(len(STATUSES), np.int64) if counts is None else counts

    def add(self, batch: EventBatch, rows: np.ndarray) -> None:
        self.counts += np.bincount(batch.status[rows], minlength=len(STATUSES))

    def merge(self, other: StatusCounts) -> None:
        self.counts += other.counts

    def to_state(self) -> list[int]:
        return self.counts.tolist()

    @classmethod
    def from_state(cls, state: list[int]) -> StatusCounts:
        return cls(np.array(state, dtype=np.int64))

    def result(self, events: int, window_seconds: int) -> dict:
        errors, timeouts = int(self.counts[STATUS_CODE["ERROR"]]), int(self.counts[STATUS_CODE["TIMEOUT"]])
        return {"ok": int(self.counts[STATUS_CODE["OK"]]), "errors": errors, "timeouts": timeouts,
                "filtered": int(self.counts[STATUS_CODE["FILTERED"]]),
                "error_rate": errors / events, "timeout_rate": timeouts / events}
