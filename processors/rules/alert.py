"""An alert: what a rule says about one window of one series. Pure data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Alert:
    rule: str
    # What the window is of: its key set and the values of that set's fields by name, e.g.
    # {"service": "chat-api", "model": "llama-3.1-8b", "model_version": "v7"}.
    keyset: str
    series: str  # the series label (SeriesKey.label)
    labels: dict[str, str]
    window_start_ms: int
    window_seconds: int
    hop_seconds: int
    value: float
    threshold: float
    message: str
    fired_at_ms: int

    def as_dict(self) -> dict:
        """A flat record (Redis stream, ClickHouse row): the labels as fields of their own too."""
        return {**self.labels, "rule": self.rule, "keyset": self.keyset, "series": self.series,
                "labels": dict(self.labels), "window_start_ms": self.window_start_ms,
                "window_seconds": self.window_seconds, "hop_seconds": self.hop_seconds, "value": self.value,
                "threshold": self.threshold, "message": self.message, "fired_at_ms": self.fired_at_ms}
