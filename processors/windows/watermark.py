"""Event-time watermark over the Kafka partitions a worker reads. Pure logic, no I/O.

Per partition we keep the newest event `ts` seen and the wall time it arrived. The watermark is
the minimum of the newest ts over the *active* partitions, so a partition that lags behind
another holds event time back and its events are not late. A partition is active while it has
delivered an event within `idle_seconds` of wall time; a partition assigned to the worker but
silent so far counts as active, at the first ts seen anywhere, for `idle_seconds` after that
first event (so the first batch of a partition read a moment after another's is not late).
When no partition is active the stream has gone quiet: event time then follows the wall clock
from the newest event seen, so the last windows still close. The watermark never goes back.
A partition handed over by its previous owner (`resume`) holds event time still until it
re-delivers the messages that owner had not committed; with none, it only keeps a quiet stream's
event time going, from that owner's newest ts.
"""

from __future__ import annotations

# A handed-over partition with messages to re-read that delivers none within this (they were
# deleted by retention, say) stops holding event time.
REDELIVERY_WAIT_MS = 60_000


def pop_closed(open_windows: dict, now_ms: float | None, lateness_ms: int) -> list:
    """Remove and return, oldest first, the windows whose end + allowed lateness event time
    `now_ms` has passed (none before the first event)."""
    if now_ms is None:
        return []
    due = [k for k, w in open_windows.items() if w.window_end_ms + lateness_ms <= now_ms]
    return sorted((open_windows.pop(k) for k in due), key=lambda w: w.window_start_ms)


class PartitionWatermark:
    def __init__(self, idle_seconds: float, partitions: tuple[int, ...] = ()):
        self.idle_ms = idle_seconds * 1000
        # partition -> (newest ts, wall ms of its newest arrival); None: assigned, nothing seen yet
        self._clock: dict[int, tuple[int, float] | None] = dict.fromkeys(partitions)
        self._first_seen: tuple[int, float] | None = None  # (first ts, wall ms) over all partitions
        # partition handed over with messages to re-read -> wall ms it was assigned (see resume)
        self._awaiting: dict[int, float] = {}
        # partition handed over with none -> (previous owner's newest ts, wall ms assigned here)
        self._quiet_clocks: dict[int, tuple[int, float]] = {}
        self._watermark: float | None = None

    def observe(self, partition: int, oldest_ts: int, newest_ts: int, wall_ms: float) -> None:
        self._awaiting.pop(partition, None)
        self._quiet_clocks.pop(partition, None)
        if self._first_seen is None:
            self._first_seen = (oldest_ts, wall_ms)
        clock = self._clock.get(partition)
        if clock is None or newest_ts >= clock[0]:
            self._clock[partition] = (newest_ts, wall_ms)
        else:
            self._clock[partition] = (clock[0], wall_ms)  # still active, just not newer

    def clock(self, partition: int) -> tuple[int, float] | None:
        """(newest ts, wall ms of its arrival) of a partition; None: nothing seen from it."""
        return self._clock.get(partition)

    def resume(self, partition: int, clock: tuple[int, float] | None, pending: bool, wall_ms: float) -> None:
        """A partition handed over (assigned at `wall_ms`) by a previous owner whose clock for it
        was `clock`. `pending`: that owner held messages feeding open windows, which this worker
        re-reads from older offsets: event time stands still until the partition delivers, so
        they are not late (REDELIVERY_WAIT_MS at most). Otherwise, once the partition has been
        silent for idle_seconds and nothing else is active, event time goes on from that owner's
        newest ts with the wall clock, so the windows it left open still close."""
        if pending:
            self._awaiting[partition] = wall_ms
        elif clock is not None and self._clock.get(partition) is None:
            # Only for a quiet stream: while anything is active, the partition's own events rule.
            self._quiet_clocks[partition] = (clock[0], wall_ms)

    def forget(self, partitions: set[int]) -> None:
        """Partitions no longer read by this worker (revoked) stop holding event time back."""
        for partition in partitions:
            self._clock.pop(partition, None)
            self._awaiting.pop(partition, None)
            self._quiet_clocks.pop(partition, None)

    def current(self, wall_ms: float) -> float | None:
        """Event time now (epoch ms), or None before the first event."""
        if any(wall_ms - assigned_at < REDELIVERY_WAIT_MS for assigned_at in self._awaiting.values()):
            return self._watermark  # a partition just handed over is to re-deliver older events
        quiet = [ts + (wall_ms - assigned_at) for ts, assigned_at in self._quiet_clocks.values()
                 if wall_ms - assigned_at >= self.idle_ms]  # silent since its assignment
        if self._first_seen is None:
            if not quiet or len(quiet) < len(self._quiet_clocks):
                return self._watermark
            return self._advance(max(quiet))
        first_ts, first_wall = self._first_seen
        active = []
        for clock in self._clock.values():
            if clock is None:
                if wall_ms - first_wall < self.idle_ms:
                    active.append(first_ts)
            elif wall_ms - clock[1] < self.idle_ms:
                active.append(clock[0])
        seen = [ts + (wall_ms - seen_at) for ts, seen_at in (c for c in self._clock.values() if c is not None)]
        if active:
            return self._advance(float(min(active)))
        if seen or quiet:
            return self._advance(max(seen + quiet))
        return self._watermark  # every partition was revoked: event time stands still

    def _advance(self, candidate: float) -> float:
        if self._watermark is None or candidate > self._watermark:
            self._watermark = candidate
        return self._watermark
