"""The metrics of one window of one series, and how two such windows merge. Pure logic."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inferwatch.processors.event_batch import STATUS_CODE
from inferwatch.processors.sketches.latency_sketch import LatencySketch
from inferwatch.processors.windows.keys import SeriesKey

LATENCY_PERCENTILES = (0.50, 0.90, 0.95, 0.99)
TTFT_PERCENTILES = (0.50, 0.95, 0.99)


@dataclass
class WindowAggregate:
    series: SeriesKey
    window_start_ms: int
    window_seconds: int
    hop_seconds: int = 0  # 0: tumbling; else a hopping window that starts every hop_seconds
    # None: the whole series. A partition: that partition's part of a series of a key set that
    # spans partitions (keys.py); such windows hold additive metrics only (no sketches fed).
    source_partition: int | None = None
    partitions: set[int] = field(default_factory=set)  # Kafka partitions its events came from
    events: int = 0
    status_counts: np.ndarray = field(default_factory=lambda: np.zeros(len(STATUS_CODE), np.int64))
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_sketch: LatencySketch = field(default_factory=LatencySketch)
    ttft_sketch: LatencySketch = field(default_factory=LatencySketch)
    error_types: dict[str, int] = field(default_factory=dict)
    quality_sums: dict[str, float] = field(default_factory=dict)
    quality_counts: dict[str, int] = field(default_factory=dict)

    def merge(self, other: WindowAggregate) -> None:
        """Add another window's counts of the same series (e.g. a pane): exact, sketches included."""
        self.events += other.events
        self.status_counts += other.status_counts
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.latency_sketch.merge(other.latency_sketch)
        self.ttft_sketch.merge(other.ttft_sketch)
        self.partitions |= other.partitions
        for target, source in ((self.error_types, other.error_types), (self.quality_sums, other.quality_sums),
                               (self.quality_counts, other.quality_counts)):
            for name, value in source.items():
                target[name] = target.get(name, 0) + value

    def to_state(self) -> dict:
        """The window's counts and sketches, JSON-able and exact (to merge it elsewhere, later)."""
        return {
            "events": self.events, "status_counts": self.status_counts.tolist(),
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens, "cost_usd": self.cost_usd,
            "latency_sketch": self.latency_sketch.to_state(), "ttft_sketch": self.ttft_sketch.to_state(),
            "error_types": self.error_types, "quality_sums": self.quality_sums, "quality_counts": self.quality_counts,
            "partitions": sorted(self.partitions),
        }

    @classmethod
    def from_state(cls, series: SeriesKey, window_start_ms: int, window_seconds: int, state: dict,
                   source_partition: int | None = None) -> WindowAggregate:
        return cls(
            series, window_start_ms, window_seconds, source_partition=source_partition,
            partitions=set(state["partitions"]), events=state["events"],
            status_counts=np.array(state["status_counts"], dtype=np.int64),
            input_tokens=state["input_tokens"], output_tokens=state["output_tokens"], cost_usd=state["cost_usd"],
            latency_sketch=LatencySketch.from_state(state["latency_sketch"]),
            ttft_sketch=LatencySketch.from_state(state["ttft_sketch"]),
            error_types=dict(state["error_types"]), quality_sums=dict(state["quality_sums"]),
            quality_counts=dict(state["quality_counts"]),
        )

    @property
    def window_end_ms(self) -> int:
        return self.window_start_ms + self.window_seconds * 1000

    def snapshot(self) -> dict:
        """The window's metrics as plain numbers (what Redis and ClickHouse get)."""
        latency = self.latency_sketch.quantiles(LATENCY_PERCENTILES) if self.latency_sketch.count else [None] * 4
        p50, p90, p95, p99 = latency
        ttft = self.ttft_sketch.quantiles(TTFT_PERCENTILES) if self.ttft_sketch.count else [None] * 3
        errors = int(self.status_counts[STATUS_CODE["ERROR"]])
        timeouts = int(self.status_counts[STATUS_CODE["TIMEOUT"]])
        return {
            "keyset": self.series.keyset,
            "series": self.series.label,
            **self.series.as_dict(),
            "window_start_ms": self.window_start_ms,
            "window_seconds": self.window_seconds,
            "hop_seconds": self.hop_seconds,
            "source_partition": -1 if self.source_partition is None else self.source_partition,
            "events": self.events,
            "requests_per_s": self.events / self.window_seconds,
            "ok": int(self.status_counts[STATUS_CODE["OK"]]),
            "errors": errors,
            "timeouts": timeouts,
            "filtered": int(self.status_counts[STATUS_CODE["FILTERED"]]),
            "error_rate": errors / self.events,
            "timeout_rate": timeouts / self.events,
            "latency_p50_ms": p50,
            "latency_p90_ms": p90,
            "latency_p95_ms": p95,
            "latency_p99_ms": p99,
            "latency_max_ms": self.latency_sketch.max if self.latency_sketch.count else None,
            "ttft_p50_ms": ttft[0],
            "ttft_p95_ms": ttft[1],
            "ttft_p99_ms": ttft[2],
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "input_tokens_mean": self.input_tokens / self.events,
            "output_tokens_mean": self.output_tokens / self.events,
            "cost_usd": self.cost_usd,
            "error_types": dict(self.error_types),
            "quality_means": {k: self.quality_sums[k] / n for k, n in self.quality_counts.items()},
            "quality_counts": dict(self.quality_counts),
        }
