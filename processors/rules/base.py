"""What an alert rule is: it reads windows and says which deserve an alert. Pure logic, no I/O.

A rule sees, on every live update, the snapshot (WindowAggregate.snapshot, FeedbackWindow.snapshot)
of every window that changed: the panes of every key set, the longer windows, the feedback
windows, open ones as they fill (so an alert comes within a live-update interval) and those
that just closed. It picks the windows it watches by their `keyset`, `window_seconds`,
`hop_seconds` fields and reads their metrics by output name (processors/aggregators/).
A `WindowRule` fires at most once per window.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import ClassVar

from inferwatch.processors.rules.alert import Alert

# A snapshot's fields that say which window it is; the rest are its series' fields and metrics.
WINDOW_FIELDS = ("keyset", "series", "window_start_ms", "window_seconds", "hop_seconds", "source_partition")


class Rule(ABC):
    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_settings(cls, settings, keysets: list) -> Rule | None:
        """The rule as configured (settings.Settings; keysets: windows.keys.KeySet, the first is
        the model series); None when the settings turn it off."""

    @abstractmethod
    def evaluate(self, windows: list[dict], watermark_ms: float | None) -> list[Alert]:
        """Alerts for these window snapshots; `watermark_ms` is event time (None: not known yet)."""


class WindowRule(Rule):
    """A rule that judges each window on its own: `check` says whether one deserves an alert."""

    def __init__(self, lateness_ms: int = 0):
        self.lateness_ms = lateness_ms
        self._fired: dict[tuple, int] = {}  # window identity -> its end (ms)

    @abstractmethod
    def watches(self, window: dict) -> bool:
        """Whether this window is one this rule judges."""

    @abstractmethod
    def check(self, window: dict) -> tuple[float, float, str] | None:
        """(value, threshold, what is wrong) if the window deserves an alert, else None."""

    def evaluate(self, windows: list[dict], watermark_ms: float | None) -> list[Alert]:
        alerts = []
        for window in windows:
            identity = tuple(window[f] for f in WINDOW_FIELDS)
            if identity in self._fired or not self.watches(window):
                continue
            verdict = self.check(window)
            if verdict is None:
                continue
            end_ms = window["window_start_ms"] + window["window_seconds"] * 1000
            self._fired[identity] = end_ms
            value, threshold, what = verdict
            labels = {k: v for k, v in window.items() if k not in WINDOW_FIELDS and isinstance(v, str)}
            alerts.append(Alert(
                rule=self.name, keyset=window["keyset"], series=window["series"], labels=labels,
                window_start_ms=window["window_start_ms"], window_seconds=window["window_seconds"],
                hop_seconds=window["hop_seconds"], value=value, threshold=threshold,
                message=f"{what} for {describe(labels)} in the {window_size(window)} window at "
                        f"{time.strftime('%H:%M:%S', time.gmtime(window['window_start_ms'] / 1000))}Z",
                fired_at_ms=int(time.time() * 1000)))
        if watermark_ms is not None:  # windows closed for good never come again
            self._fired = {k: end for k, end in self._fired.items() if end + self.lateness_ms > watermark_ms}
        return alerts


def describe(labels: dict[str, str]) -> str:
    """service/model@version for the model series; key=value pairs for any other series."""
    if labels.keys() == {"service", "model", "model_version"}:
        return f"{labels['service']}/{labels['model']}@{labels['model_version']}"
    return ", ".join(f"{name}={value}" for name, value in labels.items())


def window_size(window: dict) -> str:
    """"60s", or "300s/60s" for a hopping window."""
    hop = f"/{window['hop_seconds']}s" if window["hop_seconds"] else ""
    return f"{window['window_seconds']}s{hop}"
