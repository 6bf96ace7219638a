"""Input and output tokens: totals and per-request means."""

from __future__ import annotations

import numpy as np

from inferwatch.processors.aggregators.base import Aggregator, Output
from inferwatch.processors.event_batch import EventBatch


class Tokens(Aggregator):
    name = "tokens"
    order = 40
    outputs = (
        Output("input_tokens", "u64"), Output("output_tokens", "u64"),
        Output("input_tokens_mean", "f64", stored=False), Output("output_tokens_mean", "f64", stored=False),
    )

    def __init__(self, input_tokens: int = 0, output_tokens: int = 0):
        self.input_tokens, self.output_tokens = input_tokens, output_tokens

    def add(self, batch: EventBatch, rows: np.ndarray) -> None:
        self.input_tokens += int(batch.input_tokens[rows].sum())
        self.output_tokens += int(batch.output_tokens[rows].sum())

    def merge(self, other: Tokens) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens

    def to_state(self) -> list[int]:
        return [self.input_tokens, self.output_tokens]

    @classmethod
    def from_state(cls, state: list[int]) -> Tokens:
        return cls(*state)

    def result(self, events: int, window_seconds: int) -> dict:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "input_tokens_mean": self.input_tokens / events, "output_tokens_mean": self.output_tokens / events}
