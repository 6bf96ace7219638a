"""Drift detections as the drift topic's records (schemas/drift_event.avsc). Pure logic.

A detection is a windowed score entering alarm (the first pane of a run of `drift_persistence`
over the threshold, not every pane of the run), or a change ADWIN found. Both are drift_metrics
rows too; the topic is for what reacts to drift (a retraining pipeline, an on-call bot)."""

from __future__ import annotations

import math


def detection_records(rows: list[dict]) -> list[dict]:
    """The DriftEvent records of the drift_metrics rows (scorer.py, adwin.py) that are detections."""
    return [{
        "ts": row["ts"], "event_time": row["window_start"], "window_seconds": row["window_seconds"],
        "service": row["service"], "model": row["model"], "model_version": row["model_version"],
        "keyset": row["keyset"], "series": row["series"], "feature": row["feature"], "detector": row["detector"],
        "statistic": row["statistic"], "value": row["value"], "threshold": _optional(row["threshold"]),
        "reference": _optional(row["reference"]), "events": row["events"], "reference_events": row["reference_events"],
    } for row in rows if row.get("alarm_started") or row["detector"] == "adwin"]


def _optional(value: float) -> float | None:
    return None if math.isnan(value) else value
