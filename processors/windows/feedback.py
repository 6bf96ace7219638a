"""Tumbling windows of user feedback and evaluations per (service, model): pure logic, no I/O.

Feedback (schemas/feedback_event.avsc) arrives on its own topic, later than the requests it is
about, keyed by request_id: a (service, model) series spans partitions, so its windows are kept
per source partition with additive counts only, like the key sets that span partitions
(keys.py), and readers add the parts up. Windows are on the feedback's own `ts`, with the same
pane length, lateness and watermark rules as the request windows (panes.py, watermark.py).
The window's `positive_ratio` is thumbs up / (thumbs up + thumbs down): the feedback ratio.
With `max_series`, the series are capped like the request windows' (panes.py): feedback of a
series beyond the cap goes to the (OVERFLOW_VALUE, OVERFLOW_VALUE) series.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inferwatch.processors.windows.keys import SeriesKey
from inferwatch.processors.windows.panes import OVERFLOW_VALUE
from inferwatch.processors.windows.watermark import PartitionWatermark, pop_closed

KEYSET = "feedback"
FIELDS = ("service", "model")
OVERFLOW_SERIES = (OVERFLOW_VALUE, OVERFLOW_VALUE)
# The snapshot's per-name maps -> their Redis hash fields, the name in place of {}.
REDIS_MAP_FIELDS = {"eval_sums": "eval:{}:sum", "eval_counts": "eval:{}:count"}


@dataclass
class FeedbackWindow:
    service: str
    model: str  # "" when the feedback did not name it
    window_start_ms: int
    window_seconds: int
    source_partition: int
    feedback: int = 0
    thumbs_up: int = 0
    thumbs_down: int = 0
    rating_sum: float = 0.0
    ratings: int = 0
    hallucinations: int = 0
    judged: int = 0  # feedback that says whether the response hallucinated
    eval_sums: dict[str, float] = field(default_factory=dict)
    eval_counts: dict[str, int] = field(default_factory=dict)

    def add(self, feedback: dict) -> None:
        self.feedback += 1
        thumbs = feedback["thumbs"]
        self.thumbs_up += thumbs is not None and thumbs > 0
        self.thumbs_down += thumbs is not None and thumbs < 0
        if feedback["rating"] is not None:
            self.rating_sum += feedback["rating"]
            self.ratings += 1
        if feedback["hallucination"] is not None:
            self.judged += 1
            self.hallucinations += feedback["hallucination"]
        for name, score in feedback["eval_scores"].items():
            self.eval_sums[name] = self.eval_sums.get(name, 0.0) + score
            self.eval_counts[name] = self.eval_counts.get(name, 0) + 1

    @property
    def window_end_ms(self) -> int:
        return self.window_start_ms + self.window_seconds * 1000

    def snapshot(self) -> dict:
        """Plain numbers for Redis and ClickHouse; ratios are None where nothing was given."""
        thumbs = self.thumbs_up + self.thumbs_down
        return {
            "keyset": KEYSET,
            "series": SeriesKey(KEYSET, ("service", "model"), (self.service, self.model)).label,
            "service": self.service,
            "model": self.model,
            "window_start_ms": self.window_start_ms,
            "window_seconds": self.window_seconds,
            "hop_seconds": 0,
            "source_partition": self.source_partition,
            "feedback": self.feedback,
            "thumbs_up": self.thumbs_up,
            "thumbs_down": self.thumbs_down,
            "positive_ratio": self.thumbs_up / thumbs if thumbs else None,
            "rating_sum": self.rating_sum,
            "ratings": self.ratings,
            "rating_mean": self.rating_sum / self.ratings if self.ratings else None,
            "hallucinations": self.hallucinations,
            "judged": self.judged,
            "eval_sums": dict(self.eval_sums),
            "eval_counts": dict(self.eval_counts),
        }


class FeedbackWindows:
    def __init__(self, window_seconds: int, allowed_lateness_seconds: float, partition_idle_seconds: float,
                 partitions: tuple[int, ...] = (), max_series: int | None = None):
        self.window_ms = window_seconds * 1000
        self.window_seconds = window_seconds
        self.lateness_ms = int(allowed_lateness_seconds * 1000)
        self.max_series = max_series  # None: unbounded
        self.open: dict[tuple[str, str, int, int], FeedbackWindow] = {}
        # (service, model) -> its open windows: the series holding the cap's slots
        self._open_series: dict[tuple[str, str], int] = {}
        self.overflow_events: dict[str, int] = {}  # KEYSET -> feedback folded into the overflow series
        self.watermark = PartitionWatermark(partition_idle_seconds, partitions)

    def add(self, feedback: list[dict], partition: int, wall_ms: float) -> tuple[int, int]:
        """Add feedback read from one partition; returns (late count, event time at which every
        window this batch touched is closed, 0 if none: when its offsets may be committed)."""
        if not feedback:
            return 0, 0
        now_ms = self.watermark.current(wall_ms)
        late, closed_by = 0, 0
        for record in feedback:
            start = record["ts"] - record["ts"] % self.window_ms
            if now_ms is not None and start + self.window_ms + self.lateness_ms <= now_ms:
                late += 1
                continue
            series = (record["service"], record["model"] or "")
            if series not in self._open_series and self._cap_reached() and series != OVERFLOW_SERIES:
                series = OVERFLOW_SERIES
                self.overflow_events[KEYSET] = self.overflow_events.get(KEYSET, 0) + 1
            key = (*series, start, partition)
            window = self.open.get(key)
            if window is None:
                window = self.open[key] = FeedbackWindow(*series, start, self.window_seconds, partition)
                self._open_series[series] = self._open_series.get(series, 0) + 1
            window.add(record)
            closed_by = max(closed_by, start + self.window_ms + self.lateness_ms)
        timestamps = [record["ts"] for record in feedback]
        self.watermark.observe(partition, min(timestamps), max(timestamps), wall_ms)
        return late, closed_by

    def _cap_reached(self) -> bool:
        if self.max_series is None:
            return False
        return len(self._open_series) - (OVERFLOW_SERIES in self._open_series) >= self.max_series

    def close_due(self, wall_ms: float) -> list[FeedbackWindow]:
        closed = pop_closed(self.open, self.watermark.current(wall_ms), self.lateness_ms)
        self._free_slots(closed)
        return closed

    def drop_partitions(self, partitions: set[int]) -> None:
        """Partitions revoked: their uncommitted feedback is re-read by the new owner."""
        self._free_slots([self.open.pop(key) for key in [k for k in self.open if k[3] in partitions]])
        self.watermark.forget(partitions)

    def _free_slots(self, windows: list[FeedbackWindow]) -> None:
        """Windows no longer open: a series left with none frees its slot."""
        for window in windows:
            series = (window.service, window.model)
            self._open_series[series] -= 1
            if not self._open_series[series]:
                del self._open_series[series]

    def take_overflow_counts(self) -> dict[str, int]:
        """{KEYSET: feedback folded into the overflow series since the last take}, or {}."""
        overflow, self.overflow_events = self.overflow_events, {}
        return overflow
