"""The SDK's publishing thread: everything slow happens here, never in the caller's request path.

The caller appends a raw record to an in-memory deque (a few hundred nanoseconds). This thread
finishes each record into an event (text statistics, sampling, redaction, user-id hashing, cost),
batches and sends it through an EventPublisher backed by an on-disk spool. When the deque holds
`producer_queue_events` records, further records are dropped and counted (`dropped_events`): the
documented last resort, reached only if this thread cannot keep up at all. `dropped_events` also
counts the events that could not be built or encoded, or neither sent nor spooled (full disk).
This thread never ends before `close()`: an unexpected error is logged and the loop goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from inferwatch.producers.publisher import EventPublisher
from inferwatch.producers.spool import Spool
from inferwatch.settings import Settings

log = logging.getLogger(__name__)

IDLE_WAIT_S = 0.005
ERROR_LOG_INTERVAL_S = 60.0  # a persistent error repeats every loop: log it at most this often


class BackgroundPublisher:
    def __init__(self, settings: Settings, spool_dir: Path, finish: Callable[[dict], dict]):
        self.settings = settings
        self._finish = finish
        self._queue: deque = deque()
        self._capacity = settings.producer_queue_events
        self._dropped = 0
        self._next_error_log_at = 0.0
        spool_bytes = settings.producer_spool_max_mb * 1024 * 1024
        self.events = EventPublisher(settings, spool=Spool(spool_dir / "events", spool_bytes))
        self.feedback = EventPublisher(settings, codec=self.events.codec, topic=settings.feedback_topic,
                                       spool=Spool(spool_dir / "feedback", spool_bytes))
        self._stop = threading.Event()
        self._flush_requested = threading.Event()
        self._flushed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="inferwatch-publisher", daemon=True)
        self._thread.start()

    def submit(self, record: dict) -> None:
        """Called in the request path: O(1), never blocks, never raises."""
        if len(self._queue) >= self._capacity:
            self._dropped += 1
            return
        self._queue.append(record)

    @property
    def dropped_events(self) -> int:
        return self._dropped + self.events.stats.events_dropped + self.feedback.stats.events_dropped

    def submit_feedback(self, feedback: dict) -> None:
        self.submit({"_feedback": feedback})

    def _run(self) -> None:
        publishers = (self.events, self.feedback)
        while not self._stop.is_set():
            self._drain_queue()
            for publisher in publishers:
                self._survive(publisher.poll)
            if self._flush_requested.is_set() and not self._queue:
                # A flush that failed is retried on the next round; flush() times out meanwhile.
                flushed = [self._survive(publisher.flush, 0) for publisher in publishers]
                if all(flushed):
                    self._flush_requested.clear()
                    self._flushed.set()
            if not self._queue:
                self._stop.wait(IDLE_WAIT_S)
        self._drain_queue()

    def _survive(self, step, *args) -> bool:
        """Run one step of the loop. The errors that lose events are handled and counted where
        they occur; anything else is logged (rate-limited) and the loop goes on."""
        try:
            step(*args)
            return True
        except Exception:
            now = time.monotonic()
            if now >= self._next_error_log_at:
                self._next_error_log_at = now + ERROR_LOG_INTERVAL_S
                log.exception("inferwatch: the publishing thread goes on after an error "
                              "(logged at most every %.0f s)", ERROR_LOG_INTERVAL_S)
            return False

    def _drain_queue(self) -> None:
        queue = self._queue
        while queue:
            record = queue.popleft()
            try:
                feedback = record.get("_feedback")
                if feedback is not None:
                    self.feedback.send_raw(self.feedback.codec.encode_feedback(feedback),
                                           key=feedback["request_id"].encode(), events=1)
                else:
                    self.events.publish(self._finish(record))
            except Exception:  # a bad record must not stop the thread that sends all the others
                log.exception("inferwatch: dropping an event that could not be built")
                self._dropped += 1

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted so far is handed to librdkafka (or spooled)."""
        self._flushed.clear()
        self._flush_requested.set()
        return self._flushed.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread and deliver what is left; what is still undelivered stays spooled."""
        if not self._thread.is_alive():
            return
        self._stop.set()
        self._thread.join(timeout)
        deadline = time.monotonic() + timeout
        for publisher in (self.events, self.feedback):
            undelivered = publisher.close(max(0.0, deadline - time.monotonic()))
            if undelivered:
                log.warning("inferwatch: %d messages undelivered at exit, kept in the spool", undelivered)
