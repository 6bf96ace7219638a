"""A mergeable quantile sketch with a relative-error bound (the DDSketch algorithm), numpy-batched.

Every positive value x falls in bucket i = ceil(log_gamma(x)) with gamma = (1 + a) / (1 - a); the
bucket's representative value 2 * gamma**i / (gamma + 1) is within a relative error `a` of every
value in it. A quantile is the representative of the bucket holding the element of rank
floor(q * (n - 1)), so it is within `a` of that exact element (numpy's method="lower").
Sketches merge by adding bucket counts, so windows from several batches, partitions or workers
merge to exactly what one sketch over all values would hold.

The `ddsketch` package implements the same algorithm but adds values one Python call at a time;
here a whole batch is bucketed with one numpy call, which is what the hot path needs.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_RELATIVE_ACCURACY = 0.01
# Values at or below this (ms) are counted as zero: sub-microsecond latencies carry no signal.
MIN_TRACKED_VALUE = 1e-3


class LatencySketch:
    __slots__ = ("relative_accuracy", "_log_gamma", "_gamma", "buckets", "zero_count", "count", "max")

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY):
        if not 0 < relative_accuracy < 1:
            raise ValueError(f"relative_accuracy must be in (0, 1), got {relative_accuracy}")
        self.relative_accuracy = relative_accuracy
        self._gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._log_gamma = math.log(self._gamma)
        self.buckets: dict[int, int] = {}
        self.zero_count = 0
        self.count = 0
        self.max = float("-inf")

    def add_many(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            return
        if np.isnan(values).any() or (values < 0).any():
            raise ValueError("latency sketch takes non-negative numbers only")
        self.count += int(values.size)
        self.max = max(self.max, float(values.max()))
        tracked = values[values > MIN_TRACKED_VALUE]
        self.zero_count += int(values.size - tracked.size)
        if tracked.size:
            keys = np.ceil(np.log(tracked) / self._log_gamma).astype(np.int64)
            unique_keys, counts = np.unique(keys, return_counts=True)
            buckets = self.buckets
            for key, n in zip(unique_keys.tolist(), counts.tolist()):
                buckets[key] = buckets.get(key, 0) + n

    def merge(self, other: LatencySketch) -> None:
        if other.relative_accuracy != self.relative_accuracy:
            raise ValueError("cannot merge sketches of different relative accuracy")
        if not self.buckets:  # into an empty sketch (a window starting from its first pane): a copy, in C
            self.buckets = dict(other.buckets)
        else:
            buckets = self.buckets
            for key, n in other.buckets.items():
                buckets[key] = buckets.get(key, 0) + n
        self.zero_count += other.zero_count
        self.count += other.count
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float:
        """Value at quantile q in [0, 1]; NaN for an empty sketch."""
        return self.quantiles((q,))[0]

    def quantiles(self, qs: tuple[float, ...]) -> list[float]:
        """Values at these quantiles, from one pass over the sorted buckets."""
        for q in qs:
            if not 0 <= q <= 1:
                raise ValueError(f"quantile must be in [0, 1], got {q}")
        if self.count == 0:
            return [math.nan] * len(qs)
        keys = sorted(self.buckets)
        cumulative = np.cumsum([self.buckets[key] for key in keys]) + self.zero_count
        values = []
        for q in qs:
            rank = math.floor(q * (self.count - 1))
            if rank < self.zero_count:
                values.append(0.0)
                continue
            key = keys[int(np.searchsorted(cumulative, rank, side="right"))]  # first bucket past the rank
            values.append(min(2 * self._gamma**key / (self._gamma + 1), self.max))
        return values

    def upper_bound(self, value: float) -> float:
        """The upper end of the bucket `value` falls in (buckets are (gamma**(k-1), gamma**k]; the
        zero bucket ends at MIN_TRACKED_VALUE): bin edges placed there split no bucket, so
        counts_at_most counts exactly."""
        if value <= MIN_TRACKED_VALUE:
            return MIN_TRACKED_VALUE
        return self._gamma ** math.ceil(math.log(value) / self._log_gamma)

    def counts_at_most(self, bounds) -> np.ndarray:
        """Values per bin of ascending `bounds` (each an upper_bound): at most bounds[0], then
        above bounds[i-1] and at most bounds[i], ..., then above the last: len(bounds) + 1 counts."""
        values, counts = self.histogram()
        # A bucket's representative is inside it, so it falls in the bin its whole bucket is in.
        return np.bincount(np.searchsorted(np.asarray(bounds, dtype=np.float64), values, side="left"),
                           weights=counts, minlength=len(bounds) + 1).astype(np.int64)

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """(representative value, count) of each non-empty bucket, ascending; the zero bucket's
        representative is 0."""
        keys = np.fromiter(self.buckets.keys(), dtype=np.int64, count=len(self.buckets))
        counts = np.fromiter(self.buckets.values(), dtype=np.int64, count=len(self.buckets))
        order = np.argsort(keys)
        values = 2 * self._gamma ** keys[order].astype(np.float64) / (self._gamma + 1)
        if self.zero_count:
            return np.concatenate(([0.0], values)), np.concatenate(([self.zero_count], counts[order]))
        return values, counts[order]

    def to_state(self) -> dict:
        """JSON-able, exact: from_state(to_state()) merges and answers like the original."""
        return {"accuracy": self.relative_accuracy, "buckets": [[k, n] for k, n in self.buckets.items()],
                "zero_count": self.zero_count, "count": self.count, "max": self.max if self.count else None}

    @classmethod
    def from_state(cls, state: dict) -> LatencySketch:
        sketch = cls(state["accuracy"])
        sketch.buckets = {int(k): int(n) for k, n in state["buckets"]}
        sketch.zero_count, sketch.count = state["zero_count"], state["count"]
        sketch.max = float("-inf") if state["max"] is None else state["max"]
        return sketch
