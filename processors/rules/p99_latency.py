"""The p99 latency of a model's window above a threshold (settings: alert_p99_latency_ms)."""

from __future__ import annotations

from inferwatch.processors.rules.base import WindowRule


class P99Latency(WindowRule):
    """Watches the panes (window_seconds) of the first key set, the model series by default.
    `min_events` keeps a handful of slow requests at the start of a window from firing it."""

    name = "p99_latency"

    def __init__(self, threshold_ms: float, min_events: int, keyset: str, window_seconds: int, lateness_ms: int = 0):
        super().__init__(lateness_ms)
        self.threshold_ms, self.min_events = threshold_ms, min_events
        self.keyset, self.window_seconds = keyset, window_seconds

    @classmethod
    def from_settings(cls, settings, keysets: list) -> P99Latency:
        return cls(settings.alert_p99_latency_ms, settings.alert_min_events, keysets[0].name,
                   settings.window_seconds, int(settings.allowed_lateness_seconds * 1000))

    def watches(self, window: dict) -> bool:
        return (window["keyset"] == self.keyset and window["window_seconds"] == self.window_seconds
                and not window["hop_seconds"] and window["events"] >= self.min_events)

    def check(self, window: dict) -> tuple[float, float, str] | None:
        p99 = window["latency_p99_ms"]
        if p99 is None or p99 <= self.threshold_ms:
            return None
        return p99, self.threshold_ms, (f"p99 latency {p99:.0f} ms > {self.threshold_ms:.0f} ms "
                                        f"({window['events']} requests)")
