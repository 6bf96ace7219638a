"""The worker's processing, apart from Faust: what happens to each take of messages, on each
live-update tick and at each rebalance. The Faust app (app.py) only turns its streams, timer and
rebalance signals into calls of this, and gives it two ways out to Kafka: acking (and
committing) messages, and sending a dead letter.

- events: decoded in `decode_processes` processes (decoding.py), applied to the windows in the
  order they were read (pipeline.py); what is refused goes to the dead-letter topic and table;
- feedback: decoded here, into the feedback windows;
- each tick: the pipeline's live update goes to the committer (committer.py), which writes
  Redis, then ClickHouse, then acks and commits; its drift detections go to the drift topic;
- a rebalance: a revoked partition's handoff is written to Redis for its next owner, and read
  back by the worker it is assigned to (pipeline.handoff / resume).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures.process import BrokenProcessPool

import redis

from inferwatch.processors.committer import UpdateCommitter
from inferwatch.processors.decoding import DecoderPool
from inferwatch.processors.drift.detections import detection_records
from inferwatch.processors.pipeline import DeadLetter, RawMessage, WindowPipeline, decode_items
from inferwatch.schemas.dead_letter import dead_letter_record
from inferwatch.schemas.wire import EventCodec
from inferwatch.settings import Settings
from inferwatch.sinks import configured as configured_sinks

log = logging.getLogger(__name__)

Ack = Callable[[list[object]], Awaitable[None]]  # ack these messages' tokens, then commit
SendDeadLetter = Callable[[bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[None]]  # key, value, headers
SendDrift = Callable[[bytes, bytes], Awaitable[None]]  # key, value


class StreamProcessor:
    """`live_state`: a LiveStateWriter; `clickhouse`: a ClickHouseThread."""

    def __init__(self, settings: Settings, codec: EventCodec, live_state, clickhouse, ack: Ack,
                 send_dead_letter: SendDeadLetter, send_drift: SendDrift):
        self.settings = settings
        self.codec = codec
        self.send_drift = send_drift
        self.pipeline = WindowPipeline(settings, codec)
        self.live_state = live_state
        self.send_dead_letter = send_dead_letter
        self.committer = UpdateCommitter(live_state, configured_sinks(settings, clickhouse), clickhouse,
                                         self.pipeline.composite, ack, settings.clickhouse_max_pending_rows)
        # Avro decoding, the per-event cost, runs in these processes; none: in this one.
        self.decode_pool = DecoderPool(
            settings.decode_processes, (codec.ids, settings.window_keys, settings.event_limits),
        ) if settings.decode_processes else None
        # Takes being decoded, applied in the order they were read; bounded, so reading waits for decoding.
        self._decoding: asyncio.Queue = asyncio.Queue(maxsize=2 * settings.decode_processes or 1)
        self._handoff_name = f"{settings.app_id}:{settings.events_topic}"
        self._profiles_read_at = float("-inf")  # monotonic s

    async def on_events(self, messages: list[RawMessage]) -> None:
        """A take of the events topic: decoded (in the pool, or here) and applied in order."""
        if self.decode_pool is None:
            await self._send_dead_letters(self.pipeline.process(messages).dead_letters)
            return
        items = decode_items(messages)
        await self._decoding.put((messages, items, self.decode_pool.submit(items)))

    async def apply_decoded(self) -> None:
        """Forever: apply the takes the pool decoded, in the order they were read."""
        while self.decode_pool is not None:
            messages, items, started = await self._decoding.get()
            try:
                try:
                    outcome = self.pipeline.apply(messages, await self.decode_pool.result(items, started))
                except BrokenProcessPool:  # a fresh decoder died on this take too: it is the poison
                    log.error("decoder processes died twice on a take of %d messages: dead-lettered", len(messages))
                    outcome = self.pipeline.refuse(messages, "a decoder process died decoding this message's take, twice")
                await self._send_dead_letters(outcome.dead_letters)
            finally:
                self._decoding.task_done()

    async def on_feedback(self, messages: list[RawMessage]) -> None:
        await self._send_dead_letters(self.pipeline.process_feedback(messages))

    async def tick(self) -> None:
        """The live update: what changed goes to Redis now, to ClickHouse from the committer's queue."""
        await self._refresh_profiles()
        update = self.pipeline.live_update()
        detections = detection_records(update.drift)
        await self.committer.write(update)
        for record in detections:  # keyed by series: one series' detections stay in order
            await self.send_drift(record["series"].encode(), self.codec.encode_drift(record))

    async def _refresh_profiles(self) -> None:
        """The reference profiles, from Redis every drift_profile_refresh_seconds (one read)."""
        if time.monotonic() - self._profiles_read_at < self.settings.drift_profile_refresh_seconds:
            return
        self._profiles_read_at = time.monotonic()
        try:
            self.pipeline.drift.set_profiles(await asyncio.to_thread(self.live_state.read_profiles))
        except redis.RedisError as exc:  # the profiles held go on; the next refresh retries
            log.warning("reference profiles not read from Redis: %s", exc)

    async def write_clickhouse(self) -> None:
        """Forever: the committer's ClickHouse writes, then acks."""
        await self.committer.run_clickhouse()

    async def _send_dead_letters(self, dead_letters: list[DeadLetter]) -> None:
        rows = []
        for dead in dead_letters:
            source = (dead.message.topic, dead.message.partition, dead.message.offset)
            value, headers, reason = dead_letter_record(dead.value, dead.reason, source,
                                                        self.settings.kafka_message_max_bytes, dead.event_index)
            await self.send_dead_letter(dead.message.key, value, headers)
            rows.append(DeadLetter(dead.message, reason, dead.event_index, value).as_row(int(time.time() * 1000)))
        self.committer.queue_dead_letters(rows)

    async def on_revoked(self, revoked: set[tuple[str, int]]) -> None:
        """(topic, partition)s this worker no longer reads: their handoff to Redis, then dropped."""
        await self._decoding.join()  # takes already read are applied before their partitions are dropped
        event_partitions = {p for topic, p in revoked if topic == self.settings.events_topic}
        try:
            await asyncio.to_thread(self.live_state.write_handoffs, self._handoff_name,
                                    self.pipeline.handoff(event_partitions))
        except redis.RedisError:  # the rebalance goes on; as after a crash, the open longer windows are lost
            log.exception("handoff of partitions %s not written", sorted(event_partitions))
        self.pipeline.drop_partitions(event_partitions,
                                      {p for topic, p in revoked if topic == self.settings.feedback_topic})

    async def on_assigned(self, assigned: set[tuple[str, int]]) -> None:
        """(topic, partition)s assigned: each events partition resumes from its previous owner's handoff.

        Every member revokes before any is assigned, so that handoff is there (a worker that
        crashed left none: its open longer windows are not finalised)."""
        for partition in sorted(p for topic, p in assigned if topic == self.settings.events_topic):
            try:
                handoff = await asyncio.to_thread(self.live_state.read_handoff, self._handoff_name, partition)
                if handoff is not None:
                    states = await asyncio.to_thread(self.live_state.read_states,
                                                     self.pipeline.composite.handoff_pane_ids(handoff))
                    self.pipeline.resume(partition, handoff, states)
            except redis.RedisError:  # the partition is read all the same, without the handoff
                log.exception("handoff of partition %d not read", partition)

    def close(self) -> None:
        if self.decode_pool is not None:
            self.decode_pool.shutdown()
