"""Raw events to ClickHouse in large batches, off the stream's path, retried until written.

The agent hands each batch of decoded events (with the Kafka messages they came from) to `add`
and goes on aggregating: windows and alerts never wait for ClickHouse. `write_due` (run on a
short timer) inserts once `batch_rows` rows are buffered or the oldest has waited
`batch_seconds`; one insert costs ~30 ms whatever its size on chdb, so large batches are what
makes the log fast. When an insert fails the rows stay buffered and are retried with backoff;
the messages' offsets are committed only after their rows are written (the caller learns which
through `on_written`), so nothing is lost. The backlog is visible in `stats` and, through the
worker, in Redis (`iw:sink`). Past `max_backlog_rows`, `add` makes the agent wait: memory stays
bounded while ClickHouse is away, at the price of pausing consumption.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from inferwatch.sinks.clickhouse.rows import event_columns

log = logging.getLogger(__name__)

_BACKOFF_MAX_S = 30.0


@dataclass
class SinkStats:
    backlog_rows: int = 0
    rows_written: int = 0
    inserts: int = 0
    failed_inserts: int = 0
    last_error: str = ""

    def as_fields(self) -> dict:
        return {k: v for k, v in self.__dict__.items()}


class BufferedEventWriter:
    def __init__(
        self,
        insert: Callable[[dict], Awaitable[None]],
        on_written: Callable[[list], None],
        batch_rows: int,
        batch_seconds: float,
        max_backlog_rows: int,
    ):
        self._insert = insert
        self._on_written = on_written
        self.batch_rows = batch_rows
        self.batch_seconds = batch_seconds
        self.max_backlog_rows = max_backlog_rows
        self.stats = SinkStats()
        self._events: list[dict] = []
        self._tokens: list = []
        self._oldest_at: float | None = None
        self._retry_at = 0.0
        self._backoff_s = 0.5
        self._writing = False
        self._room = asyncio.Event()
        self._room.set()

    async def add(self, events: list[dict], tokens: list) -> None:
        """Buffer the events of these messages; waits only when the backlog is at its cap."""
        await self._room.wait()
        if self._oldest_at is None:
            self._oldest_at = time.monotonic()
        self._events.extend(events)
        self._tokens.extend(tokens)
        self.stats.backlog_rows = len(self._events)
        if len(self._events) >= self.max_backlog_rows:
            self._room.clear()

    async def write_due(self, force: bool = False) -> None:
        """Insert the buffer if it is big or old enough (or `force`) and no retry is pending."""
        if not self._tokens or self._writing:
            return
        now = time.monotonic()
        due = force or len(self._events) >= self.batch_rows or now - self._oldest_at >= self.batch_seconds
        if not due or now < self._retry_at:
            return
        # Take the buffer: what the agent adds during the insert goes into a fresh one.
        events, tokens, oldest_at = self._events, self._tokens, self._oldest_at
        self._events, self._tokens, self._oldest_at = [], [], None
        self._writing = True
        try:
            if events:
                await self._insert(event_columns(events))
        except Exception as exc:  # ClickHouse away or failing: keep the rows, in order, and retry
            self._events, self._tokens = events + self._events, tokens + self._tokens
            self._oldest_at = oldest_at
            self.stats.failed_inserts += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            self._retry_at = now + self._backoff_s
            log.warning("inserting %d events failed (retry in %.1fs): %s", len(events), self._backoff_s, exc)
            self._backoff_s = min(self._backoff_s * 2, _BACKOFF_MAX_S)
            return
        finally:
            self._writing = False
            self.stats.backlog_rows = len(self._events)
        self._backoff_s = 0.5
        self.stats.inserts += 1
        self.stats.rows_written += len(events)
        if len(self._events) < self.max_backlog_rows:
            self._room.set()
        self._on_written(tokens)
