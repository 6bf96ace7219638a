"""What a sink of live updates is: where the windows a worker finalised, and its alerts, go
after Redis, before their messages are committed (processors/committer.py).

Each sink gets every update once, in order: `write` raising means "not written", and the
committer retries it (with back-off, the later updates waiting behind it), so a message is
committed only after every sink has what it fed. Adding a sink (a webhook notifier, an
exporter) is adding a module under sinks/ with one subclass: `configured` finds it, and its
`from_settings` says whether the settings turn it on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from inferwatch.processors.pipeline import LiveUpdate


class UpdateSink(ABC):
    name: ClassVar[str]
    order: ClassVar[int] = 100  # written in this order, lower first

    @classmethod
    @abstractmethod
    def from_settings(cls, settings, clickhouse) -> UpdateSink | None:
        """The sink as configured (`clickhouse`: the worker's ClickHouseThread); None: turned off."""

    @abstractmethod
    async def write(self, update: LiveUpdate) -> None:
        """Write the update's closed windows (`update.closed_windows`: snapshots, request and
        feedback windows; the longer windows included) and `update.alerts`; raise if not written."""
