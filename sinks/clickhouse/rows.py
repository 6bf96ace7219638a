"""Pipeline records -> the sink's column/row shapes (see tables.py for the input conventions)."""

from __future__ import annotations

import time

from inferwatch.processors.windows.keys import KEY_FIELDS
from inferwatch.schemas.wire import RESOURCE_FIELDS
from inferwatch.sinks.clickhouse.tables import ALERT_COLUMNS, DRIFT_COLUMNS, EVENT_COLUMNS, FEEDBACK_ROLLUP_COLUMNS, ROLLUP_COLUMNS

_EVENT_FIELDS = [name for name in EVENT_COLUMNS if name not in RESOURCE_FIELDS]


def event_columns(events: list[dict]) -> dict[str, list]:
    """Decoded Avro events (ts in epoch ms) as EVENT_COLUMNS, the nested `resources` record flattened."""
    columns = {name: [e[name] for e in events] for name in _EVENT_FIELDS}
    resources = [e["resources"] or {} for e in events]
    for name in RESOURCE_FIELDS:
        columns[name] = [r.get(name) for r in resources]
    return columns


def rollup_row(window: dict) -> dict:
    """A closed window's snapshot (WindowAggregate.snapshot) as a window_rollups row: the key
    columns its key set does not have are ''."""
    return _closed_window_row({**dict.fromkeys(KEY_FIELDS, ""), **window}, ROLLUP_COLUMNS)


def feedback_rollup_row(window: dict) -> dict:
    """A closed feedback window's snapshot (FeedbackWindow.snapshot) as a feedback_rollups row."""
    return _closed_window_row(window, FEEDBACK_ROLLUP_COLUMNS)


def _closed_window_row(window: dict, columns: tuple[str, ...]) -> dict:
    row = {"window_start": window["window_start_ms"], "closed_at": int(time.time() * 1000)}
    row.update((name, window[name]) for name in columns if name not in row)
    return row


def drift_row(score: dict) -> dict:
    """A drift score (processors/drift/scorer.py) as a drift_metrics row."""
    return {name: score[name] for name in DRIFT_COLUMNS}


def alert_row(alert: dict) -> dict:
    """An alert (Alert.as_dict) as an alerts row: the model series' fields from its labels, else ''."""
    row = {name: alert[name] for name in ALERT_COLUMNS if name in alert}
    row.update({name: alert["labels"].get(name, "") for name in ("service", "model", "model_version")},
               window_start=alert["window_start_ms"], fired_at=alert["fired_at_ms"])
    return row
