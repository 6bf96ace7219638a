"""Publishes inference events to Kafka as batch messages.

Events are grouped per (service, model) and sent as one InferenceEventBatch message when a group
holds `producer_batch_events` events or its oldest event has waited `producer_linger_ms`, so the
stream processor pays its per-message cost once per batch. The message key is "service|model":
one series stays in one partition, in order.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import KafkaError, Producer

from inferwatch.schemas.registry import schema_ids
from inferwatch.schemas.wire import EventCodec
from inferwatch.settings import Settings

# Room left under the broker's message limit for the record overhead Kafka adds.
_MESSAGE_OVERHEAD_BYTES = 1024


@dataclass
class PublishStats:
    events_sent: int = 0
    messages_sent: int = 0
    events_delivered: int = 0
    events_failed: int = 0
    last_error: str = ""


class EventPublisher:
    def __init__(self, settings: Settings, codec: EventCodec | None = None):
        self.settings = settings
        self.topic = settings.events_topic
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
                }
            )
        )
        self.stats = PublishStats()
        self._pending: dict[tuple[str, str], list[dict]] = {}
        self._pending_since: dict[tuple[str, str], float] = {}

    def publish(self, event: dict) -> None:
        """Queue one event (ts in epoch ms, event_id a UUID string); sends full batches."""
        group = (event["service"], event["model"])
        pending = self._pending.get(group)
        if pending is None:
            pending = self._pending[group] = []
            self._pending_since[group] = time.monotonic()
        pending.append(event)
        if len(pending) >= self.settings.producer_batch_events:
            self._send_group(group)

    def poll(self) -> None:
        """Send batches whose linger time is up and serve delivery reports; call it often."""
        deadline = time.monotonic() - self.settings.producer_linger_ms / 1000
        for group in [g for g, since in self._pending_since.items() if since <= deadline]:
            self._send_group(group)
        self.producer.poll(0)

    def flush(self, timeout: float = 30.0) -> int:
        """Send everything queued and wait for delivery; returns messages still undelivered."""
        for group in list(self._pending):
            self._send_group(group)
        return self.producer.flush(timeout)

    def send_raw(self, value: bytes, key: bytes | None = None) -> None:
        """Send a pre-encoded message as is (tests and tools that need malformed input)."""
        self._produce(value, key, events=0)

    def _send_group(self, group: tuple[str, str]) -> None:
        events = self._pending.pop(group)
        del self._pending_since[group]
        key = f"{group[0]}|{group[1]}".encode()
        for chunk_value, chunk_len in self._encode_within_limit(events):
            self._produce(chunk_value, key, events=chunk_len)

    def _encode_within_limit(self, events: list[dict]):
        """Encode as one batch, halving it until every message fits the broker's limit."""
        value = self.codec.encode_batch(events)
        if len(value) <= self.max_message_bytes:
            yield value, len(events)
        elif len(events) == 1:
            raise ValueError(
                f"event {events[0]['event_id']} encodes to {len(value)} bytes, over the "
                f"{self.max_message_bytes}-byte message limit"
            )
        else:
            middle = len(events) // 2
            yield from self._encode_within_limit(events[:middle])
            yield from self._encode_within_limit(events[middle:])

    def _produce(self, value: bytes, key: bytes | None, events: int) -> None:
        def on_delivery(err: KafkaError | None, _msg) -> None:
            if err is None:
                self.stats.events_delivered += events
            else:
                self.stats.events_failed += events
                self.stats.last_error = str(err)

        while True:
            try:
                self.producer.produce(self.topic, value=value, key=key, on_delivery=on_delivery)
                break
            except BufferError:
                # librdkafka's local queue is full: serve deliveries to make room, then retry.
                self.producer.poll(0.1)
        self.stats.messages_sent += 1
        self.stats.events_sent += events

    def close(self) -> None:
        self.flush()
