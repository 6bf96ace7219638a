"""Where each live update goes, in order: Redis, then ClickHouse, then its messages' offsets.

The pipeline (pipeline.py) says what changed; this says where it goes and when a message may be
committed. Neither sink may hold up the other or the consuming:
- **Redis** (live windows, closed-window claims, alerts, counters) is written on every tick, in a
  thread, so an unreachable Redis never blocks the event loop (and the consumer's heartbeats).
  While it fails, the updates not written are folded into one (open windows: the newest value of
  each; closed windows, alerts, counters: all of them), so memory grows only with what closes,
  and it is written when Redis answers again.
- **The update sinks** (sinks/base.py; ClickHouse's closed windows and alerts first) are written
  by a task of its own, from a queue, in order, each update to each sink once, retried with
  back-off: a slow or absent ClickHouse delays neither the live windows nor the alerts. So are
  dead letters' rows into ClickHouse. The queue is bounded (`clickhouse_max_pending_rows`): past
  it the oldest updates' rows are dropped, counted (`rollups_dropped`) and logged, and their
  messages committed, so Kafka's retention is never what gives.
- **Offsets**: a message is acked and committed only once every window it fed is in Redis and in
  every sink, so a restart re-reads exactly what no written window holds.

A window is finalised once, by the worker that claims it in Redis (LiveStateWriter.claim_closed);
once its rollup is in ClickHouse the claim is marked written. A window another live worker holds
unwritten (a rebalance; or a worker just killed, whose heartbeat has not expired yet) keeps the
messages of its update uncommitted and is claimed again every tick, until it is written by its
holder or taken over from a dead one: a window's messages are never committed before it is in
ClickHouse, whoever writes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from inferwatch.processors.pipeline import LiveUpdate
from inferwatch.processors.windows.longer import LongerWindows
from inferwatch.sinks.base import UpdateSink

log = logging.getLogger(__name__)

_FIRST_BACKOFF_S = 0.5
_MAX_BACKOFF_S = 10.0
_LOG_EVERY_S = 10.0  # an outage logs once per this, not once per tick


class UpdateCommitter:
    """`live_state`: a LiveStateWriter; `sinks`: the UpdateSinks, in order; `clickhouse`: a
    ClickHouseThread (its `call` and `tables`: dead letters' rows); `ack(tokens)`: acks these
    messages and commits (the Faust layer)."""

    def __init__(self, live_state, sinks: list[UpdateSink], clickhouse, composite: LongerWindows,
                 ack: Callable[[list[object]], Awaitable[None]], max_pending_rows: int):
        self.live_state = live_state
        self.sinks = sinks
        self.clickhouse = clickhouse
        self.composite = composite
        self.ack = ack
        self.max_pending_rows = max_pending_rows
        self.rollups_dropped = 0  # since the last update written to Redis (a counter there)
        self._redis_pending: LiveUpdate | None = None
        # Closed windows a live worker holds unwritten, with the messages waiting on them.
        self._held: list[tuple[list[dict], list[object]]] = []
        self._clickhouse_queue: deque[LiveUpdate] = deque()
        self._dead_letter_rows: list[dict] = []
        self._queued = asyncio.Event()
        self._logged_at: dict[str, float] = {}

    # --- Redis, on every tick -------------------------------------------------------------------

    async def write(self, update: LiveUpdate) -> bool:
        """Write this update (and any not written before) to Redis and queue it for ClickHouse;
        False if Redis failed (they are kept, folded into one, for the next tick)."""
        pending = self._redis_pending = update if self._redis_pending is None else _fold(self._redis_pending, update)
        dropped = self.rollups_dropped
        pending.counters["rollups_dropped"] = pending.counters.get("rollups_dropped", 0) + dropped
        try:
            await asyncio.to_thread(self._write_redis, pending)
        except Exception as exc:  # noqa: BLE001 -- Redis away or refusing: the next tick retries
            pending.counters["rollups_dropped"] -= dropped
            self._log_outage("redis", "live update not written to Redis (kept, retried every tick): %s", exc)
            return False
        self.rollups_dropped -= dropped
        self._redis_pending = None
        self._clickhouse_queue.append(pending)
        await self._trim_clickhouse_queue()
        self._queued.set()
        return True

    def _write_redis(self, update: LiveUpdate) -> None:
        live_state = self.live_state
        # A retry after a failure re-claims: claims are idempotent for their holder.
        panes, held = live_state.claim_closed(update.closed_windows)
        live_state.write(update.open_windows, panes, update.alerts, update.counters, update.late_by_series,
                         update.learned_profiles, update.detections)
        # Longer windows: merged from the finalised panes' states, this update's included,
        # whichever worker finalised them (one MGET for all).
        pane_ids = [due.pane_ids() for due in update.due_windows]
        states = iter(live_state.read_states([p for ids in pane_ids for p in ids]))
        merged = [self.composite.from_pane_states(due, [next(states) for _ in ids])
                  for due, ids in zip(update.due_windows, pane_ids)]
        composites, held_composites = live_state.claim_closed([w.snapshot() for w in merged if w is not None])
        ours, ackable, still_held = panes + composites, update.ackable, []
        if held or held_composites:
            still_held.append((held + held_composites, ackable))
            ackable = []
        for windows, tokens in self._held:  # held before: ours now, or written by their holder?
            taken, waiting = live_state.claim_closed(windows)
            ours += taken
            if waiting:
                still_held.append((waiting, tokens))
            else:
                ackable = tokens + ackable  # the older messages first
        live_state.write([], ours[len(panes):], [], {}, {})
        # Written: now what this worker finalised goes to ClickHouse, with the messages it frees.
        update.closed_windows, update.ackable, update.due_windows, self._held = ours, ackable, [], still_held

    # --- ClickHouse, in a task of its own -------------------------------------------------------

    def queue_dead_letters(self, rows: list[dict]) -> None:
        """Rows for the `dead_letters` table (the records are already on the dead-letter topic)."""
        self._dead_letter_rows.extend(rows)
        self._queued.set()

    async def run_clickhouse(self) -> None:
        """Forever: insert the queued updates in order, then ack and commit their messages."""
        backoff = _FIRST_BACKOFF_S
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._clickhouse_queue or self._dead_letter_rows:
                try:
                    await self._write_clickhouse()
                except Exception as exc:  # noqa: BLE001 -- ClickHouse away or failing: retried in order
                    self._log_outage("clickhouse", "ClickHouse write failed (queued, retried): %s", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF_S)
                    continue
                backoff = _FIRST_BACKOFF_S

    async def _write_clickhouse(self) -> None:
        if self._dead_letter_rows:
            rows = self._dead_letter_rows[:]  # more may be queued while these are inserted
            await self.clickhouse.call(self.clickhouse.tables.insert_dead_letters, rows)
            del self._dead_letter_rows[:len(rows)]
        if not self._clickhouse_queue:
            return
        update = self._clickhouse_queue[0]
        if "sinks" not in update.written:  # not again when only the ack below failed
            for sink in self.sinks:
                if sink.name not in update.written:  # not again when a later sink failed
                    await sink.write(update)
                    update.written.add(sink.name)
            update.written.add("sinks")
            try:
                await asyncio.to_thread(self.live_state.mark_written, update.closed_windows)
            except Exception as exc:  # noqa: BLE001 -- the claims stay ours; only a takeover after our death repeats them
                self._log_outage("redis", "windows written to ClickHouse not marked in Redis: %s", exc)
        await self.ack(update.ackable)
        self._clickhouse_queue.popleft()

    async def _trim_clickhouse_queue(self) -> None:
        """Drop the oldest updates' rows past max_pending_rows (they are in Redis); commit their messages."""
        rows = sum(_rows(u) for u in self._clickhouse_queue)
        # The head may be mid-write in run_clickhouse: never dropped here.
        while rows > self.max_pending_rows and len(self._clickhouse_queue) > 1:
            dropped = self._clickhouse_queue[1]
            del self._clickhouse_queue[1]
            rows -= _rows(dropped)
            self.rollups_dropped += _rows(dropped)
            log.error("ClickHouse queue over clickhouse_max_pending_rows (%d): %d rows of closed windows and "
                      "alerts dropped (they are in Redis)", self.max_pending_rows, _rows(dropped))
            await self.ack(dropped.ackable)

    @property
    def pending(self) -> dict[str, int]:
        """What waits: updates for Redis (folded: 0 or 1), rows for ClickHouse."""
        return {"redis_updates": int(self._redis_pending is not None),
                "clickhouse_rows": sum(_rows(u) for u in self._clickhouse_queue) + len(self._dead_letter_rows)}

    def _log_outage(self, sink: str, message: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._logged_at.get(sink, 0.0) >= _LOG_EVERY_S:
            self._logged_at[sink] = now
            log.warning(message, f"{type(exc).__name__}: {exc}")


def _fold(older: LiveUpdate, newer: LiveUpdate) -> LiveUpdate:
    """Two updates not written to Redis as one: each open window's newest value, all the rest."""
    def window_id(w: dict) -> tuple:
        return w["keyset"], w["series"], w["window_seconds"], w["hop_seconds"], w["source_partition"], w["window_start_ms"]

    open_windows = {window_id(w): w for w in older.open_windows} | {window_id(w): w for w in newer.open_windows}

    def added(a: dict, b: dict) -> dict:
        return {k: a.get(k, 0) + b.get(k, 0) for k in a.keys() | b.keys()}

    return LiveUpdate(
        open_windows=list(open_windows.values()), closed_windows=older.closed_windows + newer.closed_windows,
        alerts=older.alerts + newer.alerts, counters=added(older.counters, newer.counters),
        drift=older.drift + newer.drift, learned_profiles=older.learned_profiles | newer.learned_profiles,
        detections=older.detections + newer.detections,
        late_by_series=added(older.late_by_series, newer.late_by_series),
        due_windows=older.due_windows + newer.due_windows, ackable=older.ackable + newer.ackable,
    )


def _rows(update: LiveUpdate) -> int:
    return len(update.closed_windows) + len(update.alerts) + len(update.drift)
