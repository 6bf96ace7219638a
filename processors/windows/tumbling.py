"""Tumbling event-time windows per series of each key set (see keys.py): pure logic, no I/O.

A series of a key set that spans partitions gets one window per source partition (keys.py).

Event time is the watermark over the partitions read (see watermark.py). A window closes once
event time passes its end plus the allowed lateness; an event for a window that closed (or would
close at once) is *late*: it is counted per series and not added to any window (the raw event is
still stored by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inferwatch.processors.event_batch import STATUS_CODE, EventBatch, KeyedSeries
from inferwatch.processors.windows.aggregate import WindowAggregate
from inferwatch.processors.windows.keys import SeriesKey
from inferwatch.processors.windows.watermark import PartitionWatermark, pop_closed

@dataclass
class AddResult:
    added: int
    late: int
    touched: list[WindowAggregate]  # windows that changed in this batch
    # Event time at which every window this batch touched is closed (0: none touched): its
    # Kafka offsets may be committed only then, so a restart re-reads what no closed window holds.
    closed_by_ms: int = 0


class TumblingWindows:
    def __init__(
        self,
        window_seconds: int,
        allowed_lateness_seconds: float,
        partition_idle_seconds: float = 5.0,
        partitions: tuple[int, ...] = (),
    ):
        self.window_ms = window_seconds * 1000
        self.window_seconds = window_seconds
        self.lateness_ms = int(allowed_lateness_seconds * 1000)
        # (series, window start, source partition or None: see keys.py) -> window
        self.open: dict[tuple[SeriesKey, int, int | None], WindowAggregate] = {}
        self.late_by_series: dict[SeriesKey, int] = {}
        self.watermark = PartitionWatermark(partition_idle_seconds, partitions)

    def add(self, batch: EventBatch, partition: int, wall_ms: float) -> AddResult:
        """Add a batch of events read from one Kafka partition."""
        if len(batch) == 0:
            return AddResult(0, 0, [], 0)
        window_start = batch.ts_ms - batch.ts_ms % self.window_ms
        # Late = the window would already be closed by the event time reached *before* this batch.
        now_ms = self.watermark.current(wall_ms)
        if now_ms is None:
            on_time = np.ones(len(batch), dtype=bool)
        else:
            on_time = window_start + self.window_ms + self.lateness_ms > now_ms
        late = int(len(batch) - on_time.sum())
        touched = []
        for keyed in batch.keyed:
            if late:
                late_series, late_counts = np.unique(keyed.index[~on_time], return_counts=True)
                for s, n in zip(late_series.tolist(), late_counts.tolist()):
                    key = keyed.series[s]
                    self.late_by_series[key] = self.late_by_series.get(key, 0) + n
            touched += self._aggregate(batch, keyed, window_start, on_time, partition)
        closed_by = int(window_start[on_time].max()) + self.window_ms + self.lateness_ms if late < len(batch) else 0

        self.watermark.observe(partition, int(batch.ts_ms.min()), int(batch.ts_ms.max()), wall_ms)
        return AddResult(added=len(batch) - late, late=late, touched=touched, closed_by_ms=closed_by)

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget the open windows fed by partitions this worker no longer reads.

        Their events are not committed yet (see AddResult.closed_by_ms), so the partitions' new
        owner re-reads them and closes those windows, once.
        """
        for key in [k for k, w in self.open.items() if w.partitions & partitions]:
            del self.open[key]
        self.watermark.forget(partitions)

    def _aggregate(self, batch: EventBatch, keyed: KeyedSeries, window_start: np.ndarray,
                   on_time: np.ndarray, partition: int) -> list[WindowAggregate]:
        idx = np.flatnonzero(on_time)
        if idx.size == 0:
            return []
        # One group per (series, window): sort once, then reduce each contiguous run with numpy.
        group = keyed.index[idx].astype(np.int64) << 40 | (window_start[idx] // self.window_ms)
        order = np.argsort(group, kind="stable")
        idx, group = idx[order], group[order]
        bounds = np.flatnonzero(np.diff(group)) + 1
        touched = []
        source_partition = partition if keyed.keyset.spans_partitions else None
        for run in np.split(idx, bounds):
            first = run[0]
            key = (keyed.series[keyed.index[first]], int(window_start[first]), source_partition)
            window = self.open.get(key)
            if window is None:
                window = self.open[key] = WindowAggregate(key[0], key[1], self.window_seconds,
                                                          source_partition=source_partition)
            window.events += run.size
            window.partitions.add(partition)
            window.status_counts += np.bincount(batch.status[run], minlength=len(STATUS_CODE))
            window.input_tokens += int(batch.input_tokens[run].sum())
            window.output_tokens += int(batch.output_tokens[run].sum())
            window.cost_usd += float(np.nansum(batch.cost_usd[run]))
            if source_partition is None:  # percentiles only for whole series
                window.latency_sketch.add_many(batch.latency_ms[run])
                ttft = batch.ttft_ms[run]
                window.ttft_sketch.add_many(ttft[~np.isnan(ttft)])
            failed = batch.error_type[run]
            failed = failed[failed != None]  # noqa: E711 (elementwise on an object array)
            if failed.size:
                for name, n in zip(*np.unique(failed.astype(str), return_counts=True)):
                    window.error_types[name] = window.error_types.get(name, 0) + int(n)
            for i in run.tolist():
                for name, value in batch.quality_scores[i].items():  # empty for most events
                    window.quality_sums[name] = window.quality_sums.get(name, 0.0) + value
                    window.quality_counts[name] = window.quality_counts.get(name, 0) + 1
            touched.append(window)
        return touched

    def close_due(self, wall_ms: float) -> list[WindowAggregate]:
        """Remove and return the windows whose end + allowed lateness event time has passed."""
        return pop_closed(self.open, self.watermark.current(wall_ms), self.lateness_ms)

    def take_late_counts(self) -> dict[SeriesKey, int]:
        late, self.late_by_series = self.late_by_series, {}
        return late
