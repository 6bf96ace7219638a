"""First alert rule: a window's p99 latency for a model above a threshold. Pure logic, no I/O."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from inferwatch.processors.windows.tumbling import WindowAggregate

RULE_NAME = "p99_latency"


@dataclass(frozen=True)
class Alert:
    rule: str
    service: str
    model: str
    model_version: str
    window_start_ms: int
    value: float
    threshold: float
    message: str
    fired_at_ms: int

    def as_dict(self) -> dict:
        return asdict(self)


class P99LatencyRule:
    """Fires once per (series, window) when p99 exceeds the threshold.

    It watches the windows of one key set (the first configured: by default the model series).
    Checked on open windows as they fill, not only at close, so the alert comes within a live
    update interval of the regression instead of after the window ends. `min_events` keeps a
    handful of slow requests at the start of a window from firing it.
    """

    def __init__(self, threshold_ms: float, min_events: int, keyset: str):
        self.keyset = keyset
        self.threshold_ms = threshold_ms
        self.min_events = min_events
        self._fired: set[tuple] = set()

    def evaluate(self, windows: list[WindowAggregate]) -> list[Alert]:
        alerts = []
        for window in windows:
            key = (window.series, window.window_start_ms)
            if window.series.keyset != self.keyset or window.events < self.min_events or key in self._fired:
                continue
            p99 = window.latency_sketch.quantile(0.99)
            if p99 > self.threshold_ms:
                self._fired.add(key)
                fields = window.series.as_dict()
                alerts.append(
                    Alert(
                        rule=RULE_NAME,
                        service=fields.get("service", ""),
                        model=fields.get("model", ""),
                        model_version=fields.get("model_version", ""),
                        window_start_ms=window.window_start_ms,
                        value=p99,
                        threshold=self.threshold_ms,
                        message=(
                            f"p99 latency {p99:.0f} ms > {self.threshold_ms:.0f} ms for "
                            f"{_describe(fields)} in the {window.window_seconds}s window at "
                            f"{time.strftime('%H:%M:%S', time.gmtime(window.window_start_ms / 1000))}Z "
                            f"({window.events} requests)"
                        ),
                        fired_at_ms=int(time.time() * 1000),
                    )
                )
        return alerts

    def forget_closed(self, closed: list[WindowAggregate]) -> None:
        """Closed windows never fire again: drop their keys so the set stays small."""
        for window in closed:
            self._fired.discard((window.series, window.window_start_ms))


def _describe(fields: dict[str, str]) -> str:
    """service/model@version for the model series; key=value pairs for any other key set."""
    if fields.keys() == {"service", "model", "model_version"}:
        return f"{fields['service']}/{fields['model']}@{fields['model_version']}"
    return ", ".join(f"{name}={value}" for name, value in fields.items())
