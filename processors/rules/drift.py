"""A model series in drift: a drift feature's statistic over its calibrated threshold in
`drift_persistence` consecutive panes (processors/drift/scorer.py; docs/drift.md)."""

from __future__ import annotations

from inferwatch.processors.rules.base import WindowRule


class Drift(WindowRule):
    name = "drift"

    @classmethod
    def from_settings(cls, settings, keysets: list) -> Drift:
        return cls(int(settings.allowed_lateness_seconds * 1000))

    def watches(self, window: dict) -> bool:
        return bool(window.get("drift_alarms"))  # only the closed panes the scorer put in alarm have any

    def check(self, window: dict) -> tuple[float, float, str] | None:
        # The feature furthest over its threshold speaks for the pane, in JS if it is in alarm in
        # JS (bounded by 1, readable across features); PSI's thresholds can be tiny.
        name, threshold = max(window["drift_alarms"].items(),
                              key=lambda a: (a[0].endswith(":js"), window["drift"][a[0]] / a[1]))
        feature, statistic = name.rsplit(":", 1)
        value = window["drift"][name]
        return value, threshold, (f"{feature} drifted from its reference: {statistic.upper()} {value:.3f} > "
                                  f"{threshold:.3f} ({window['events']} requests)")
