"""The one thread that talks to ClickHouse in the process that owns it.

With embedded chdb only one process may open the database, and the engine is entered from one
thread at a time: every ClickHouse call of the worker (raw events from the Kafka sink, closed
windows, alerts, dead letters, drift metrics, analysts' /sql queries) runs here, in the order it
was submitted. A server DSN goes through the same thread, so both backends run the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from inferwatch.settings import Settings
from inferwatch.sinks.clickhouse.sink import ClickHouseSink

T = TypeVar("T")


class ClickHouseThread:
    def __init__(self, settings: Settings):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse")
        # Opened on the thread itself: the client is only ever used there.
        self._sink: ClickHouseSink = self._executor.submit(ClickHouseSink, settings.resolved_clickhouse_dsn).result()
        self.submit(self._sink.ensure_schema, settings.clickhouse_events_ttl_days).result()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the ClickHouse thread; ``fn`` is usually a bound ClickHouseSink method
        (see ``sink``), e.g. ``submit(thread.sink.insert_rollups, rows)``."""
        return self._executor.submit(fn, *args)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``submit`` for asyncio code (the Faust agent): awaits without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    @property
    def sink(self) -> ClickHouseSink:
        """The sink whose methods ``submit``/``call`` run; never call them from another thread."""
        return self._sink

    def close(self) -> None:
        """Finish what was submitted, then release the connection (for chdb: the path lock)."""
        self.submit(self._sink.close).result()
        self._executor.shutdown(wait=True)
