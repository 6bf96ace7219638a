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
        ranked = sorted(window["drift_alarms"].items(), reverse=True,
                        key=lambda a: (a[0].endswith(":js"), window["drift"][a[0]] / a[1]))
        name, threshold = ranked[0]
        feature, statistic = name.rsplit(":", 1)
        value = window["drift"][name]
        features = list(dict.fromkeys(n.rsplit(":", 1)[0] for n, _ in ranked))  # all in alarm, furthest first
        return value, threshold, (f"{', '.join(features)} drifted from the reference: {feature} "
                                  f"{statistic.upper()} {value:.3f} > {threshold:.3f} ({window['events']} requests)")
