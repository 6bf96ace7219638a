"""The one thread that talks to ClickHouse in the process that owns it.

With embedded chdb only one process may open the database, and the engine is entered from one
thread at a time: every ClickHouse call of the worker (raw events from the Kafka sink, closed
windows, alerts, dead letters, drift metrics, analysts' /sql queries) runs here, in the order it
was submitted. A server DSN goes through the same thread, so both backends run the same code.

The thread runs at a lower CPU priority (`clickhouse_thread_nice`), and so do the threads the
embedded engine starts from it (Linux threads inherit it): when the machine's cores are busy,
the windows and alerts go first and ClickHouse, which only has to keep up, takes what is left.
Measured (bench/pipeline_throughput.py, 2 cores): chdb inserts of ~1 s on both cores were what
remained of the worst publish-to-Redis lags.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from inferwatch.settings import Settings
from inferwatch.sinks.clickhouse.tables import ClickHouseTables

T = TypeVar("T")
log = logging.getLogger(__name__)


def _lower_priority(nice: int) -> None:
    """Executor initializer: this thread (and what it starts) at `nice`; Linux only, where a
    thread's nice value is its own (elsewhere it would renice the whole process)."""
    if not nice or sys.platform != "linux":
        return
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except OSError as exc:  # e.g. a container forbidding it: run at normal priority
        log.warning("ClickHouse thread keeps normal priority: %s", exc)


class ClickHouseThread:
    def __init__(self, settings: Settings):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="clickhouse",
                                            initializer=_lower_priority, initargs=(settings.clickhouse_thread_nice,))
        # Opened on the thread itself: the client is only ever used there.
        self._tables: ClickHouseTables = self._executor.submit(ClickHouseTables, settings.resolved_clickhouse_dsn).result()
        self.submit(self._tables.ensure_schema, settings.clickhouse_events_ttl_days, settings.event_limits).result()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on the ClickHouse thread; ``fn`` is usually a bound ClickHouseTables method
        (see ``tables``), e.g. ``submit(thread.tables.insert_rollups, rows)``."""
        return self._executor.submit(fn, *args)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``submit`` for asyncio code (the Faust agent): awaits without blocking the event loop."""
        return await asyncio.wrap_future(self.submit(fn, *args))

    @property
    def tables(self) -> ClickHouseTables:
        """The tables whose methods ``submit``/``call`` run; never call them from another thread."""
        return self._tables

    def close(self) -> None:
        """Finish what was submitted, then release the connection (for chdb: the path lock)."""
        self.submit(self._tables.close).result()
        self._executor.shutdown(wait=True)
