"""Closed windows, alerts and drift scores into ClickHouse: `window_rollups`, `feedback_rollups`,
`alerts`, `drift_metrics`."""

from __future__ import annotations

from inferwatch.processors.pipeline import LiveUpdate
from inferwatch.processors.windows.feedback import KEYSET as FEEDBACK_KEYSET
from inferwatch.sinks.base import UpdateSink
from inferwatch.sinks.clickhouse.rows import alert_row, drift_row, feedback_rollup_row, rollup_row


class ClickHouseWindows(UpdateSink):
    name = "clickhouse"
    order = 0  # the log analysts query: first

    def __init__(self, clickhouse):
        self.clickhouse = clickhouse  # a ClickHouseThread

    @classmethod
    def from_settings(cls, settings, clickhouse) -> ClickHouseWindows:
        return cls(clickhouse)

    async def write(self, update: LiveUpdate) -> None:
        tables = self.clickhouse.tables
        windows = [w for w in update.closed_windows if w["keyset"] != FEEDBACK_KEYSET]
        feedback = [w for w in update.closed_windows if w["keyset"] == FEEDBACK_KEYSET]
        if windows:
            await self.clickhouse.call(tables.insert_rollups, [rollup_row(w) for w in windows])
        if feedback:
            await self.clickhouse.call(tables.insert_feedback_rollups, [feedback_rollup_row(w) for w in feedback])
        if update.alerts:
            await self.clickhouse.call(tables.insert_alerts, [alert_row(a) for a in update.alerts])
        if update.drift:
            await self.clickhouse.call(tables.insert_drift_metrics, [drift_row(d) for d in update.drift])
