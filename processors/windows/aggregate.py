"""One window of one series: its key, its event count and one instance of every registered
aggregator (processors/aggregators/), and how two such windows merge. Pure logic."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inferwatch.processors.aggregators import registered
from inferwatch.processors.aggregators.base import Aggregator
from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.windows.keys import SeriesKey


@dataclass
class WindowAggregate:
    series: SeriesKey
    window_start_ms: int
    window_seconds: int
    hop_seconds: int = 0  # 0: tumbling; else a hopping window that starts every hop_seconds
    # None: the whole series. A partition: that partition's part of a series of a key set that
    # spans partitions (keys.py); such windows keep no whole-series-only metric (sketches).
    source_partition: int | None = None
    partitions: set[int] = field(default_factory=set)  # Kafka partitions its events came from
    events: int = 0
    metrics: dict[str, Aggregator] = field(default=None)  # name -> its state; default: every one, empty

    def __post_init__(self) -> None:
        if self.metrics is None:
            self.metrics = {cls.name: cls() for cls in self._kept()}

    def _kept(self) -> list[type[Aggregator]]:
        return [cls for cls in registered() if self.source_partition is None or not cls.whole_series_only]

    def add(self, batch: EventBatch, rows: np.ndarray, partition: int) -> None:
        """Add the batch's events at these indices (all of this series and window), read from `partition`."""
        self.events += rows.size
        self.partitions.add(partition)
        for metric in self.metrics.values():
            metric.add(batch, rows)

    def merge(self, other: WindowAggregate) -> None:
        """Add another window's counts of the same series (e.g. a pane): exact, sketches included."""
        self.events += other.events
        self.partitions |= other.partitions
        for name, metric in self.metrics.items():
            if name in other.metrics:
                metric.merge(other.metrics[name])

    def to_state(self) -> dict:
        """The window's counts and sketches, JSON-able and exact (to merge it elsewhere, later);
        each metric's state carries its aggregator's version."""
        return {"events": self.events, "partitions": sorted(self.partitions),
                "metrics": {name: [type(m).version, m.to_state()] for name, m in self.metrics.items()}}

    @classmethod
    def from_state(cls, series: SeriesKey, window_start_ms: int, window_seconds: int, state: dict,
                   source_partition: int | None = None) -> WindowAggregate:
        """A metric the state lacks, or holds at another version, starts empty: a pane finalised
        before that aggregator (or its state's shape) existed contributes nothing to it."""
        window = cls(series, window_start_ms, window_seconds, source_partition=source_partition,
                     partitions=set(state["partitions"]), events=state["events"])
        saved = state.get("metrics", {})
        for aggregator in window._kept():
            version, metric_state = saved.get(aggregator.name, (None, None))
            if version == aggregator.version:
                window.metrics[aggregator.name] = aggregator.from_state(metric_state)
        return window

    @property
    def window_end_ms(self) -> int:
        return self.window_start_ms + self.window_seconds * 1000

    def snapshot(self) -> dict:
        """The window's key and metrics as plain values (what Redis, ClickHouse and rules get)."""
        snapshot = {
            "keyset": self.series.keyset,
            "series": self.series.label,
            **self.series.as_dict(),
            "window_start_ms": self.window_start_ms,
            "window_seconds": self.window_seconds,
            "hop_seconds": self.hop_seconds,
            "source_partition": -1 if self.source_partition is None else self.source_partition,
            "events": self.events,
            "requests_per_s": self.events / self.window_seconds,
        }
        for aggregator in registered():
            metric = self.metrics.get(aggregator.name)
            if metric is None:  # not kept for a partition part
                snapshot.update((o.name, {} if o.is_map else None) for o in aggregator.outputs)
            else:
                snapshot.update(metric.result(self.events, self.window_seconds))
        return snapshot
