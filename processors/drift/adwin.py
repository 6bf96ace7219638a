"""ADWIN change detection per model series, per request: river's ADWIN on each request's latency,
answer length and error indicator, in the order the worker reads them. Pure logic (river, numpy).

The windowed statistics (scorer.py) compare panes with a reference; ADWIN needs no reference: it
keeps an adaptive window of the series' recent values and cuts it where two sub-windows' means
differ by more than its bound allows at confidence `delta` (Bifet & Gavaldà 2007), so it finds a
change of the mean as soon as the evidence suffices, within a pane. Each cut is a `Detection`:
the series, the feature, the means and counts before and after the cut.

The detectors are held in memory: a restarted worker, or the next owner of a partition, starts
them afresh (no detection until they have seen enough of the series again; no false alarm
either). At most `max_series` series are watched; the series past it are counted in `unwatched`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from river.drift import ADWIN

from inferwatch.processors.event_batch import EventBatch, KeyedSeries
from inferwatch.processors.windows.keys import SeriesKey

# feature -> the per-request values it watches, from a batch's columns
FEATURES = {
    "latency_ms": lambda batch: batch.latency_ms,
    "output_tokens": lambda batch: batch.output_tokens.astype(np.float64),
    "error": lambda batch: (batch.status != 0).astype(np.float64),  # STATUSES[0] is OK
}


@dataclass(frozen=True)
class Detection:
    series: SeriesKey
    feature: str
    ts_ms: int  # event time of the request at which the change was found
    mean_before: float
    count_before: int
    mean_after: float
    count_after: int


class AdwinDetectors:
    def __init__(self, keyset: str, delta: float = 0.002, max_series: int = 10_000):
        self.keyset, self.delta, self.max_series = keyset, delta, max_series
        self._detectors: dict[tuple[SeriesKey, str], ADWIN] = {}
        self._series: set[SeriesKey] = set()
        self.unwatched = 0  # events of series past max_series

    def update(self, batch: EventBatch) -> list[Detection]:
        """Feed a batch's requests, per series in their order; the changes found."""
        keyed = next((k for k in batch.keyed if k.keyset.name == self.keyset), None)
        if keyed is None:
            return []
        detections = []
        columns = {feature: values(batch) for feature, values in FEATURES.items()}
        for series, positions in self._positions(keyed):
            ts = batch.ts_ms[positions]
            for feature, column in columns.items():
                detector = self._detectors.get((series, feature))
                if detector is None:
                    detector = self._detectors[series, feature] = ADWIN(delta=self.delta)
                detections += _feed(detector, column[positions], ts, series, feature)
        return detections

    def _positions(self, keyed: KeyedSeries):
        """Each watched series of the batch with its events' positions, in order."""
        order = np.argsort(keyed.index, kind="stable")
        counts = np.bincount(keyed.index, minlength=len(keyed.series))
        for series, positions in zip(keyed.series, np.split(order, np.cumsum(counts)[:-1])):
            if series not in self._series:
                if len(self._series) >= self.max_series:
                    self.unwatched += positions.size
                    continue
                self._series.add(series)
            yield series, positions


def _feed(detector: ADWIN, values: np.ndarray, ts: np.ndarray, series: SeriesKey, feature: str) -> list[Detection]:
    # river's ADWIN cuts its window only at a detection, from the old end, and starts afresh on
    # the update after one: what a cut dropped is what the window held before this batch (none
    # if it starts afresh) plus the values fed since, less what it keeps.
    width, total = (0, 0.0) if detector.drift_detected else (detector.width, detector.estimation * detector.width)
    fed_from, detections = 0, []
    update = detector.update
    for i, value in enumerate(values.tolist()):
        update(value)
        if detector.drift_detected:
            held = width + i + 1 - fed_from
            held_sum = total + float(np.sum(values[fed_from:i + 1]))
            kept, kept_mean = int(detector.width), detector.estimation
            dropped = held - kept
            before = (held_sum - kept * kept_mean) / dropped if dropped > 0 else float("nan")
            detections.append(Detection(series, feature, int(ts[i]), before, int(dropped), kept_mean, kept))
            width, total, fed_from = 0, 0.0, i + 1
    return detections


def detection_row(detection: Detection, now_ms: int) -> dict:
    """A drift_metrics row (migration 007): `value` the mean after the cut, `reference` before it."""
    labels = detection.series.as_dict()
    return {"ts": now_ms, "window_start": detection.ts_ms, "window_seconds": 0, "service": labels.get("service", ""),
            "model": labels.get("model", ""), "model_version": labels.get("model_version", ""),
            "keyset": detection.series.keyset, "series": detection.series.label, "feature": detection.feature,
            "detector": "adwin",
            "statistic": "mean", "value": detection.mean_after, "threshold": float("nan"),
            "reference": detection.mean_before, "events": detection.count_after,
            "reference_events": detection.count_before, "drifted": True}
