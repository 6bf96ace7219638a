"""The panes: tumbling event-time windows of `window_seconds` per series of each key set (see
keys.py), which the longer windows are merged from (longer.py). Pure logic, no I/O.

A series of a key set that spans partitions gets one window per source partition (keys.py).

Event time is the watermark over the partitions read (see watermark.py). A window closes once
event time passes its end plus the allowed lateness; an event for a window that closed (or would
close at once) is *late*: it is counted per series and not added to any window (the raw event is
still stored by the caller).

Series values come from producers, so the number of series is unbounded: with `max_series`, at
most that many series of a key set have open windows at once, and the events of any further
series are aggregated in the key set's *overflow* series (every value OVERFLOW_VALUE) until
windows close and free their series' slots. The late counts keep at most `max_series` series of
a key set between two takes, the rest under the overflow series too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from inferwatch.processors.event_batch import EventBatch, KeyedSeries
from inferwatch.processors.windows.aggregate import WindowAggregate
from inferwatch.processors.windows.keys import KeySet, SeriesKey
from inferwatch.processors.windows.watermark import PartitionWatermark, pop_closed

OVERFLOW_VALUE = "__other__"


@cache
def overflow_series(keyset: KeySet) -> SeriesKey:
    """The series a key set's events beyond its series cap are aggregated in."""
    return SeriesKey(keyset.name, keyset.fields, (OVERFLOW_VALUE,) * len(keyset.fields))


@dataclass
class AddResult:
    added: int
    late: int
    touched: list[WindowAggregate]  # windows that changed in this batch
    # Event time at which every window this batch touched is closed (0: none touched): its
    # Kafka offsets may be committed only then, so a restart re-reads what no closed window holds.
    closed_by_ms: int = 0


class Panes:
    def __init__(
        self,
        window_seconds: int,
        allowed_lateness_seconds: float,
        partition_idle_seconds: float = 5.0,
        partitions: tuple[int, ...] = (),
        max_series: int | None = None,
    ):
        self.window_ms = window_seconds * 1000
        self.window_seconds = window_seconds
        self.lateness_ms = int(allowed_lateness_seconds * 1000)
        self.max_series = max_series  # per key set; None: unbounded
        # (series, window start, source partition or None: see keys.py) -> window
        self.open: dict[tuple[SeriesKey, int, int | None], WindowAggregate] = {}
        # key set name -> series -> its open windows: the series holding the key set's slots
        self._open_series: dict[str, dict[SeriesKey, int]] = {}
        self.late_by_series: dict[SeriesKey, int] = {}
        self._late_series_count: dict[str, int] = {}  # key set name -> its series in late_by_series, overflow aside
        self.overflow_events: dict[str, int] = {}  # key set name -> events folded into its overflow series
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
                self._count_late(keyed, ~on_time)
            if self.max_series is not None:
                keyed = self._fold_beyond_cap(keyed, on_time)
            touched += self._aggregate(batch, keyed, window_start, on_time, partition)
        closed_by = int(window_start[on_time].max()) + self.window_ms + self.lateness_ms if late < len(batch) else 0

        self.watermark.observe(partition, int(batch.ts_ms.min()), int(batch.ts_ms.max()), wall_ms)
        return AddResult(added=len(batch) - late, late=late, touched=touched, closed_by_ms=closed_by)

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget the open windows fed by partitions this worker no longer reads.

        Their events are not committed yet (see AddResult.closed_by_ms), so the partitions' new
        owner re-reads them and closes those windows, once.
        """
        dropped = [k for k, w in self.open.items() if w.partitions & partitions]
        self._free_slots([self.open.pop(key) for key in dropped])
        self.watermark.forget(partitions)

    def _count_late(self, keyed: KeyedSeries, late: np.ndarray) -> None:
        """Late events per series; a series beyond the cap of late_by_series counts as the overflow."""
        name, overflow = keyed.keyset.name, overflow_series(keyed.keyset)
        late_series, late_counts = np.unique(keyed.index[late], return_counts=True)
        for s, n in zip(late_series.tolist(), late_counts.tolist()):
            key = keyed.series[s]
            if self.max_series is not None and key not in self.late_by_series and key != overflow:
                if self._late_series_count.get(name, 0) == self.max_series:
                    key = overflow
                    self.overflow_events[name] = self.overflow_events.get(name, 0) + n
                else:
                    self._late_series_count[name] = self._late_series_count.get(name, 0) + 1
            self.late_by_series[key] = self.late_by_series.get(key, 0) + n

    def _fold_beyond_cap(self, keyed: KeyedSeries, on_time: np.ndarray) -> KeyedSeries:
        """The key set's series of the batch, those that would exceed the cap replaced by the
        overflow series. New series take the free slots in the order they appear in the batch."""
        overflow = overflow_series(keyed.keyset)
        open_series = self._open_series.get(keyed.keyset.name, {})
        free_slots = self.max_series - len(open_series) + (overflow in open_series)
        on_time_events = np.bincount(keyed.index[on_time], minlength=len(keyed.series))
        new = [s for s in np.flatnonzero(on_time_events).tolist()
               if keyed.series[s] not in open_series and keyed.series[s] != overflow]
        folded = new[free_slots:]
        if not folded:
            return keyed
        name = keyed.keyset.name
        self.overflow_events[name] = self.overflow_events.get(name, 0) + int(on_time_events[folded].sum())
        # Remap the events' series index: the folded series all point at the overflow series.
        series = keyed.series if overflow in keyed.series else [*keyed.series, overflow]
        remap = np.arange(len(keyed.series), dtype=np.int32)
        remap[folded] = series.index(overflow)
        return KeyedSeries(keyed.keyset, series, remap[keyed.index])

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
                open_series = self._open_series.setdefault(key[0].keyset, {})
                open_series[key[0]] = open_series.get(key[0], 0) + 1
            window.add(batch, run, partition)
            touched.append(window)
        return touched

    def close_due(self, wall_ms: float) -> list[WindowAggregate]:
        """Remove and return the windows whose end + allowed lateness event time has passed."""
        closed = pop_closed(self.open, self.watermark.current(wall_ms), self.lateness_ms)
        self._free_slots(closed)
        return closed

    def _free_slots(self, windows: list[WindowAggregate]) -> None:
        """Windows no longer open: a series left with none frees its key set's slot."""
        for window in windows:
            open_series = self._open_series[window.series.keyset]
            open_series[window.series] -= 1
            if not open_series[window.series]:
                del open_series[window.series]

    def take_late_counts(self) -> dict[SeriesKey, int]:
        late, self.late_by_series, self._late_series_count = self.late_by_series, {}, {}
        return late

    def take_overflow_counts(self) -> dict[str, int]:
        """Key set name -> events folded into its overflow series (windowed or late) since the last take."""
        overflow, self.overflow_events = self.overflow_events, {}
        return overflow
