"""Publishes inference events to Kafka as batch messages.

Events are grouped per (service, model) and sent as one InferenceEventBatch message when a group
holds `producer_batch_events` events or its oldest event has waited `producer_linger_ms`, so the
stream processor pays its per-message cost once per batch. The message key is "service|model":
one series stays in one partition, in order. A batch never exceeds the broker's message limit
(it is split in halves until every part fits). An event that cannot be sent at all (it does not
encode, or alone exceeds the limit) raises ValueError in the tools; in the SDK (with a spool) it
is dropped, logged and counted, and the rest of its batch is sent.

Without a spool (tools: simulate, replay) a full local queue makes `publish` wait. With a spool
(the SDK's background thread) nothing waits: a batch librdkafka cannot queue, or that failed
delivery, or that librdkafka refuses (unknown topic, fatal producer error), goes to the spool, and
while the spool holds anything new batches go there too, so the order is kept; `poll()` re-sends
the oldest spooled segment when the broker answers again. What the spool cannot take (full disk)
is dropped and counted, with one warning per episode.
librdkafka's idempotent producer retries a short outage by itself without duplicates; a batch
that times out after `producer_delivery_timeout_ms` may have reached the broker before the
outage, so its re-send can duplicate it (at-least-once; event_id is the dedup key downstream).
"""

from __future__ import annotations

import logging
import time
from operator import itemgetter
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaError, KafkaException, Producer

from inferwatch.producers.spool import Spool, SpooledMessage
from inferwatch.schemas.registry import schema_ids
from inferwatch.schemas.wire import PARTITION_KEY_FIELDS, EventCodec
from inferwatch.settings import Settings

log = logging.getLogger(__name__)

_partition_key = itemgetter(*PARTITION_KEY_FIELDS)  # -> (service, model): the message key

# Room left under the broker's message limit for the record overhead Kafka adds.
_MESSAGE_OVERHEAD_BYTES = 1024
_SPOOL_RETRY_MAX_S = 30.0


@dataclass
class PublishStats:
    events_sent: int = 0  # handed to librdkafka
    messages_sent: int = 0
    events_delivered: int = 0  # acknowledged by the broker
    events_failed: int = 0  # delivery failed (then spooled, when there is a spool)
    events_spooled: int = 0
    events_dropped: int = 0  # did not encode or fit a message, or the spool could not take them
    last_error: str = ""


class EventPublisher:
    def __init__(self, settings: Settings, codec: EventCodec | None = None, spool: Spool | None = None,
                 topic: str | None = None):
        self.settings = settings
        self.topic = topic or settings.events_topic
        self.codec = codec or EventCodec(schema_ids(settings.schema_registry_url))
        self.max_message_bytes = settings.kafka_message_max_bytes - _MESSAGE_OVERHEAD_BYTES
        self.producer = Producer(
            settings.kafka_config(
                **{
                    "acks": "all",
                    "enable.idempotence": True,
                    "compression.type": "lz4",
                    # We batch events ourselves; librdkafka only needs to coalesce messages briefly.
                    "linger.ms": 5,
                    "message.max.bytes": settings.kafka_message_max_bytes,
                    "message.timeout.ms": settings.producer_delivery_timeout_ms,
                    "queue.buffering.max.messages": settings.producer_max_queued_messages,
                }
            )
        )
        self.spool = spool
        self.stats = PublishStats()
        self._pending: dict[tuple[str, str], list[dict]] = {}
        self._pending_since: dict[tuple[str, str], float] = {}
        self._draining: tuple[Path, list[SpooledMessage]] | None = None
        self._drain_failed: set[int] = set()  # indexes into the segment being re-sent
        self._drain_next = 0  # next index of that segment to hand to librdkafka
        self._drain_outstanding = 0
        self._next_drain_at = 0.0
        self._drain_backoff_s = 0.5
        self._spool_failing = False  # in a failure episode of the spool's disk: warned once
        self._refused_by = ""  # librdkafka's refusal last warned about; "" once it takes messages

    def publish(self, event: dict) -> None:
        """Queue one event (ts in epoch ms, event_id a UUID string); sends full batches."""
        group = _partition_key(event)
        pending = self._pending.get(group)
        if pending is None:
            pending = self._pending[group] = []
            self._pending_since[group] = time.monotonic()
        pending.append(event)
        if len(pending) >= self.settings.producer_batch_events:
            self._send_group(group)

    def poll(self) -> None:
        """Send batches whose linger time is up, serve delivery reports, re-send spooled data."""
        deadline = time.monotonic() - self.settings.producer_linger_ms / 1000
        for group in [g for g, since in self._pending_since.items() if since <= deadline]:
            self._send_group(group)
        self.producer.poll(0)
        if self.spool is not None:
            self._drain_spool()

    def flush(self, timeout: float = 30.0) -> int:
        """Send everything queued and wait for delivery; returns messages still undelivered."""
        for group in list(self._pending):
            self._send_group(group)
        return self.producer.flush(timeout)

    def send_raw(self, value: bytes, key: bytes | None = None, events: int = 0) -> None:
        """Send a pre-encoded message as is (single events, feedback, deliberately malformed input)."""
        self._produce(value, key, events)

    def _send_group(self, group: tuple[str, str]) -> None:
        events = self._pending.pop(group)
        del self._pending_since[group]
        key = f"{group[0]}|{group[1]}".encode()
        for chunk_value, chunk_len in self._encode_within_limit(events):
            self._produce(chunk_value, key, events=chunk_len)

    def _encode_within_limit(self, events: list[dict]):
        """Encode as one batch, halving it until every part encodes and fits the broker's limit.
        An event that alone does not is dropped (the tools, without a spool, raise)."""
        try:
            value = self.codec.encode_batch(events)
        except Exception as exc:  # fastavro raises ValueError, TypeError, ... for a field of the wrong type
            problem = f"does not encode: {exc}"
        else:
            if len(value) <= self.max_message_bytes:
                yield value, len(events)
                return
            problem = f"encodes to {len(value)} bytes, over the {self.max_message_bytes}-byte message limit"
        if len(events) > 1:
            middle = len(events) // 2
            yield from self._encode_within_limit(events[:middle])
            yield from self._encode_within_limit(events[middle:])
        elif self.spool is None:
            raise ValueError(f"event {events[0].get('event_id')} {problem}")
        else:
            self.stats.events_dropped += 1
            log.warning("inferwatch: dropping event %s: it %s", events[0].get("event_id"), problem)

    def _on_delivery(self, events: int):
        def report(err: KafkaError | None, msg) -> None:
            if err is None:
                self.stats.events_delivered += events
                return
            self.stats.events_failed += events
            self.stats.last_error = str(err)
            if self.spool is not None:
                self._spool([SpooledMessage(msg.key(), msg.value(), events)])

        return report

    def _produce(self, value: bytes, key: bytes | None, events: int) -> None:
        if self.spool is not None and (self._draining or not self.spool.is_empty()):
            self._spool([SpooledMessage(key, value, events)])  # keep the order behind the spool
            return
        while True:
            try:
                self.producer.produce(self.topic, value=value, key=key, on_delivery=self._on_delivery(events))
                break
            except BufferError:
                if self.spool is not None:
                    self._spool([SpooledMessage(key, value, events)])
                    return
                # No spool: wait for deliveries to make room in librdkafka's queue.
                self.producer.poll(0.1)
            except KafkaException as exc:
                if self.spool is None:
                    raise
                self._refused(exc)
                self._spool([SpooledMessage(key, value, events)])
                return
        self._refused_by = ""
        self.stats.messages_sent += 1
        self.stats.events_sent += events

    def _refused(self, exc: KafkaException) -> None:
        """librdkafka refused a message outright (unknown topic, fatal error): it is kept in the spool."""
        self.stats.last_error = str(exc)
        if self._refused_by != self.stats.last_error:
            self._refused_by = self.stats.last_error
            log.warning("inferwatch: Kafka refuses messages (%s): keeping them in the spool", exc)

    def _spool(self, messages: list[SpooledMessage]) -> None:
        events = sum(m.events for m in messages)
        try:
            self.spool.append(messages)
        except OSError as exc:
            self.stats.events_dropped += events
            self._spool_failed(exc, "dropping (and counting) the events it cannot take")
            return
        self._spool_written()
        self.stats.events_spooled += events

    def _spool_failed(self, exc: OSError, consequence: str) -> None:
        self.stats.last_error = f"spool: {exc}"
        if not self._spool_failing:  # a full disk fails every write: one warning per episode
            self._spool_failing = True
            log.warning("inferwatch: cannot write the spool in %s (%s): %s until it can",
                        self.spool.directory, exc, consequence)

    def _spool_written(self) -> None:
        if self._spool_failing:
            self._spool_failing = False
            log.info("inferwatch: the spool in %s can be written again", self.spool.directory)

    def _drain_spool(self) -> None:
        """Re-send the oldest spooled segment; it leaves the spool only once delivered."""
        if self._draining is None:
            if time.monotonic() < self._next_drain_at:
                return
            self._draining = self.spool.oldest()
            self._drain_next = 0
            if self._draining is None:
                return
        messages = self._draining[1]
        # Queue what librdkafka has room for; the rest follows on later polls.
        while self._drain_next < len(messages):
            message = messages[self._drain_next]
            try:
                self.producer.produce(self.topic, value=message.value, key=message.key,
                                      on_delivery=self._on_drain_delivery(self._drain_next, message.events))
                self._drain_outstanding += 1
                self._refused_by = ""
            except BufferError:
                return
            except KafkaException as exc:
                self._refused(exc)
                self._drain_failed.add(self._drain_next)  # stays spooled, like a failed delivery
            self._drain_next += 1
        if self._drain_outstanding == 0:
            self._finish_drain()

    def _finish_drain(self) -> None:
        """Every re-sent message has its delivery report: settle the segment."""
        segment, messages = self._draining
        self._draining = None
        # What failed (or was never queued, at close) stays at the head of the spool, in order.
        undelivered = [m for i, m in enumerate(messages) if i in self._drain_failed or i >= self._drain_next]
        self._drain_failed = set()
        try:
            self.spool.replace(segment, undelivered)
            self._spool_written()
        except OSError as exc:
            self._spool_failed(exc, "keeping re-sent segments whole (their delivered messages go again)")
        if undelivered:
            # The broker is still unreachable: wait before trying again.
            self._next_drain_at = time.monotonic() + self._drain_backoff_s
            self._drain_backoff_s = min(self._drain_backoff_s * 2, _SPOOL_RETRY_MAX_S)
        else:
            self._drain_backoff_s = 0.5

    def _on_drain_delivery(self, index: int, events: int):
        def report(err: KafkaError | None, _msg) -> None:
            self._drain_outstanding -= 1
            if err is None:
                self.stats.events_delivered += events
            else:
                self.stats.last_error = str(err)
                self._drain_failed.add(index)

        return report

    def close(self, timeout: float = 30.0) -> int:
        """Deliver what is queued and spooled within `timeout`; the rest is spooled for the next
        start. Returns the messages that were still undelivered at the deadline."""
        deadline = time.monotonic() + timeout
        self.flush(timeout)
        if self.spool is not None:
            while (self._draining is not None or not self.spool.is_empty()) and time.monotonic() < deadline:
                self._drain_spool()
                self.producer.poll(0.05)
        undelivered = self.producer.flush(max(0.0, deadline - time.monotonic()))
        if self.spool is not None:
            if undelivered:
                self.producer.purge()  # their failed delivery reports spool them
                self.producer.poll(0)
            if self._draining is not None and self._drain_outstanding == 0:
                self._finish_drain()
        return undelivered
