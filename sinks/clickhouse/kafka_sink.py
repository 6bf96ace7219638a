"""Kafka -> ClickHouse: the full log of events and feedback, at least once, never duplicated.

A consumer of its own (group ``<app_id>-clickhouse-sink``) on the events and feedback topics, run
as a thread of the worker, so the windows and alerts (the Faust agent) never wait for ClickHouse
and ClickHouse never waits for them. It reads messages until `clickhouse_batch_rows` rows or
`clickhouse_batch_seconds` have gathered, inserts them (avro_container.py: ClickHouse parses the
Avro, no event is decoded in Python), and only then commits the messages' offsets, synchronously.
Events go in through event_intake.py, which keeps out the events the worker refuses as invalid.

- Crash between insert and commit: the messages are read and inserted again. A batch re-sent
  as is is dropped by ClickHouse (insert deduplication token); any other redelivery is
  collapsed by the tables' ReplacingMergeTree key (event_id, feedback_id); queries read FINAL.
- ClickHouse failing: the same batch is retried with exponential backoff (up to
  `clickhouse_retry_max_seconds`), nothing is committed, and consumption pauses (the backlog
  stays in Kafka; memory stays at one batch).
- Malformed messages (the agent dead-letters them): skipped and counted. Framing and the event
  count are checked here; a body that ClickHouse cannot parse makes the insert fail, and then,
  once per batch, each message is decoded with fastavro to find and drop the bad ones.
- Poison (a message fastavro decodes but ClickHouse rejects): the failed batch is split in halves
  until the messages that fail alone are found; those that fail alone again after ClickHouse
  took other inserts are dead-lettered (dead-letter topic and `dead_letters`, counted in
  `poison_messages`), the rest are inserted. A batch none of whose parts goes in is ClickHouse
  failing: backed off as above, never dead-lettered.
- Backlog: Redis hash `iw:sink` (`inferwatch status`), rewritten every second: `lag_messages`
  (messages not yet committed: read and pending, or not yet read), `pending_rows`, `rows_read`, `rows_written`, `feedback_rows_written`,
  `inserts`, `failed_inserts`, `skipped_messages`, `poison_messages`, `last_error`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import asdict, dataclass, field

import redis
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaException, Message, Producer, TopicPartition

from inferwatch.processes import worker_id
from inferwatch.schemas.dead_letter import dead_letter_record
from inferwatch.schemas.registry import feedback_schema, schema_ids
from inferwatch.schemas.wire import EventCodec, WireFormatError, check_event_count, unframe
from inferwatch.settings import Settings
from inferwatch.sinks.clickhouse.avro_container import RecordBlock, array_blocks, object_container
from inferwatch.sinks.clickhouse.clickhouse_thread import ClickHouseThread
from inferwatch.sinks.clickhouse.event_intake import INTAKE_TABLE, message_record, message_schema
from inferwatch.sinks.redis.live_state import SINK_STATS

log = logging.getLogger(__name__)

_STATS_EVERY_S = 1.0
_FIRST_BACKOFF_S = 0.5
_POLL_MESSAGES = 1000


@dataclass(frozen=True)
class _Table:
    name: str
    schema: dict  # the Avro record schema of its rows; its field names are the inserted columns

    @property
    def columns(self) -> list[str]:
        return [f["name"] for f in self.schema["fields"]]


EVENTS = _Table(INTAKE_TABLE, message_schema())  # one row per message: event_intake.py
FEEDBACK = _Table("feedback", feedback_schema())


@dataclass(frozen=True)
class _Message:
    topic: str
    partition: int
    offset: int
    value: bytes
    table: _Table
    block: RecordBlock  # the message's records in `table`'s schema
    rows: int  # events or feedback records


@dataclass
class SinkStats:
    lag_messages: int = 0
    pending_rows: int = 0
    rows_read: int = 0
    rows_written: int = 0
    feedback_rows_written: int = 0
    inserts: int = 0
    failed_inserts: int = 0
    skipped_messages: int = 0
    poison_messages: int = 0
    last_error: str = ""


@dataclass
class _Batch:
    messages: list[_Message] = field(default_factory=list)
    # Next offset to commit per partition: covers skipped messages too.
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    started_at: float | None = None
    read: int = 0  # messages, skipped ones too
    validated: bool = False  # bodies checked with fastavro after a failed insert

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.messages)


class ClickHouseEventSink:
    """``start()`` it next to the Faust agent, ``stop()`` it on shutdown; see the module doc."""

    def __init__(self, settings: Settings, clickhouse: ClickHouseThread):
        self.settings = settings
        self.stats = SinkStats()
        self._clickhouse = clickhouse
        self._codec = EventCodec(schema_ids(settings.schema_registry_url))
        self._tables = {
            (settings.events_topic, self._codec.ids.batch): EVENTS,
            (settings.events_topic, self._codec.ids.event): EVENTS,
            (settings.feedback_topic, self._codec.ids.feedback): FEEDBACK,
        }
        self._consumer = Consumer(settings.kafka_config(**{
            "group.id": settings.clickhouse_sink_group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": int(settings.worker_session_timeout_seconds * 1000),
        }))
        self._redis = redis.Redis.from_url(settings.resolved_redis_url, socket_timeout=2)
        self._dead_letters = Producer(settings.kafka_config(**{"message.max.bytes": settings.kafka_message_max_bytes}))
        self._worker_id = worker_id()
        self._batch = _Batch()
        self._retry_at: float | None = None
        self._backoff_s = _FIRST_BACKOFF_S
        self._stats_at = 0.0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clickhouse-sink", daemon=True)

    def start(self) -> None:
        self._consumer.subscribe([self.settings.events_topic, self.settings.feedback_topic],
                                 on_revoke=self._on_revoke)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Insert and commit what was read (one attempt), then leave the consumer group."""
        self._stopping.set()
        self._thread.join(timeout)

    # --- the sink thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                self._read()
                if self._due():
                    self._write()
                self._publish_stats()
            if self._batch.messages and self._retry_at is None:
                self._write()
        except Exception:  # a bug: say so loudly; the agent keeps running, the lag grows in iw:sink
            log.exception("the ClickHouse sink stopped")
            self.stats.last_error = "sink thread died (see the worker's log)"
            self._publish_stats(force=True)
        finally:
            self._consumer.close()
            self._dead_letters.flush(5)

    def _read(self) -> None:
        if self._retry_at is not None:
            # Paused while ClickHouse fails; polling keeps us in the group.
            self._consumer.consume(1, timeout=min(0.1, max(0.0, self._retry_at - time.monotonic())))
            return
        # Messages of about producer_batch_events rows: fill the batch without overshooting much.
        room = self.settings.clickhouse_batch_rows - self._batch.rows
        wanted = min(_POLL_MESSAGES, max(1, room // self.settings.producer_batch_events))
        for message in self._consumer.consume(wanted, timeout=self._wait_s()):
            if message.error() is not None:
                log.warning("Kafka: %s", message.error())
                continue
            self._add(message)

    def _wait_s(self) -> float:
        if self._batch.started_at is None:
            return self.settings.clickhouse_batch_seconds
        return max(0.0, self._batch.started_at + self.settings.clickhouse_batch_seconds - time.monotonic())

    def _add(self, message: Message) -> None:
        batch = self._batch
        if batch.started_at is None:
            batch.started_at = time.monotonic()
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        batch.next_offsets[(topic, partition)] = offset + 1
        batch.read += 1
        try:
            schema_id, body = unframe(message.value())
            table = self._tables.get((topic, schema_id))
            if table is None:
                raise WireFormatError(f"unknown schema id {schema_id} on {topic}")
            is_batch = schema_id == self._codec.ids.batch
            rows = sum(b.count for b in array_blocks(body)) if is_batch else 1
            check_event_count(rows, self.settings.max_events_per_message)
        except WireFormatError as exc:
            self._skip(topic, partition, offset, exc)
            return
        if table is EVENTS:
            timestamp_type, timestamp_ms = message.timestamp()
            if timestamp_type == TIMESTAMP_NOT_AVAILABLE:  # as the agent does (processors/app.py)
                timestamp_ms = int(time.time() * 1000)
            block = RecordBlock(1, message_record(body, is_batch, timestamp_ms))
        else:
            block = RecordBlock(1, bytes(body))
        batch.messages.append(_Message(topic, partition, offset, message.value(), table, block, rows))
        self.stats.rows_read += rows

    def _skip(self, topic: str, partition: int, offset: int, reason: Exception) -> None:
        self.stats.skipped_messages += 1
        log.warning("ClickHouse sink skips %s[%d]@%d: %s", topic, partition, offset, reason)

    def _due(self) -> bool:
        batch = self._batch
        if not batch.next_offsets:
            return False
        if self._retry_at is not None:
            return time.monotonic() >= self._retry_at
        return (batch.rows >= self.settings.clickhouse_batch_rows
                or time.monotonic() - batch.started_at >= self.settings.clickhouse_batch_seconds)

    def _write(self) -> None:
        batch = self._batch
        try:
            self._insert(batch.messages)
        except Exception as exc:  # ClickHouse away, a body it cannot parse, or poison
            self._failed(exc)
            if not batch.validated and self._drop_undecodable(batch):
                return  # retried at once without the bad messages
            if not self._isolate_poison(batch):
                self._back_off(exc)
                return
        self._retry_at, self._backoff_s = None, _FIRST_BACKOFF_S
        self._consumer.resume(self._consumer.assignment())
        self._batch = _Batch()
        try:
            self._commit([TopicPartition(t, p, o) for (t, p), o in batch.next_offsets.items()])
        except KafkaException as exc:
            # The rows are in; the messages will be read again (after a rebalance) and collapse.
            log.warning("committing ClickHouse sink offsets failed: %s", exc)

    def _failed(self, exc: Exception) -> None:
        self.stats.failed_inserts += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"[:500]

    def _insert(self, batch_messages: list[_Message]) -> None:
        for table in (EVENTS, FEEDBACK):
            messages = [m for m in batch_messages if m.table is table]
            if not messages:
                continue
            container = object_container(table.schema, [m.block for m in messages])
            # The token names exactly these messages: a retry of the same batch dedups, a batch
            # that lost a bad message does not.
            token = hashlib.sha256(repr([(m.topic, m.partition, m.offset) for m in messages]).encode()).hexdigest()
            self._clickhouse.submit(self._clickhouse.tables.insert_avro, table.name, table.columns, container, token).result()
            rows = sum(m.rows for m in messages)
            if table is EVENTS:
                self.stats.rows_written += rows
            else:
                self.stats.feedback_rows_written += rows
        self.stats.inserts += 1

    def _isolate_poison(self, batch: _Batch) -> bool:
        """Insert the batch in halves, down to the messages that fail alone; dead-letter those
        that fail alone again once ClickHouse has taken other inserts. True if the batch is
        written (less its poison); False if nothing went in: ClickHouse is failing, not a message."""
        failed_alone: list[_Message] = []
        inserted_any = self._insert_halves(batch.messages, failed_alone)
        if not inserted_any:
            return False
        poison = []
        for message in failed_alone:  # a second chance: the first failure may have been an outage
            try:
                self._insert([message])
            except Exception as exc:  # noqa: BLE001 -- whatever ClickHouse says, it says it of this message
                self._failed(exc)
                poison.append((message, exc))
        self._dead_letter(poison)
        return True

    def _insert_halves(self, messages: list[_Message], failed_alone: list[_Message]) -> bool:
        """Insert `messages` in halves, recursively; collect the single messages that fail.
        True if any insert went in."""
        if len(messages) == 1:
            try:
                self._insert(messages)
                return True
            except Exception as exc:  # noqa: BLE001 -- told apart from an outage by the caller
                self._failed(exc)
                failed_alone.append(messages[0])
                return False
        middle = len(messages) // 2
        inserted = False
        for half in (messages[:middle], messages[middle:]):
            try:
                self._insert(half)
                inserted = True
            except Exception as exc:  # noqa: BLE001 -- split further
                self._failed(exc)
                inserted = self._insert_halves(half, failed_alone) or inserted
        return inserted

    def _dead_letter(self, poison: list[tuple[_Message, Exception]]) -> None:
        """To the dead-letter topic and table, like the worker's dead letters (processors/app.py)."""
        if not poison:
            return
        now_ms = int(time.time() * 1000)
        rows = []
        for message, exc in poison:
            value, headers, reason = dead_letter_record(
                message.value, f"ClickHouse refused it: {type(exc).__name__}: {exc}"[:2000],
                (message.topic, message.partition, message.offset), self.settings.kafka_message_max_bytes)
            log.error("ClickHouse sink dead-letters %s[%d]@%d: %s", message.topic, message.partition,
                      message.offset, reason)
            self._dead_letters.produce(self.settings.dlq_topic, value, headers=headers)
            rows.append({"received_at": now_ms, "topic": message.topic, "partition": message.partition,
                         "offset": message.offset, "reason": reason, "payload": value})
        self.stats.poison_messages += len(poison)
        self._dead_letters.flush(10)
        try:
            self._clickhouse.submit(self._clickhouse.tables.insert_dead_letters, rows).result()
        except Exception:  # noqa: BLE001 -- the dead-letter topic has them; the log says so
            log.exception("the dead_letters rows of %d poison messages were not inserted", len(rows))

    def _drop_undecodable(self, batch: _Batch) -> bool:
        """Drop the messages fastavro cannot decode either; True if there were any."""
        batch.validated = True
        good = []
        for message in batch.messages:
            try:
                if message.table is EVENTS:
                    self._codec.decode(message.value, self.settings.max_events_per_message)
                else:
                    self._codec.decode_feedback(message.value)
                good.append(message)
            except WireFormatError as exc:
                self._skip(message.topic, message.partition, message.offset, exc)
        dropped = len(good) < len(batch.messages)
        batch.messages = good
        return dropped

    def _back_off(self, exc: Exception) -> None:
        log.warning("ClickHouse insert of %d rows failed (retry in %.1fs): %s", self._batch.rows, self._backoff_s, exc)
        self._consumer.pause(self._consumer.assignment())
        self._retry_at = time.monotonic() + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, self.settings.clickhouse_retry_max_seconds)

    def _commit(self, offsets: list[TopicPartition]) -> None:
        self._consumer.commit(offsets=offsets, asynchronous=False)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # The new owners read from the committed offsets: what this batch holds is theirs now (an
        # insert in flight may land too; its rows collapse with theirs).
        self._batch = _Batch()
        self._retry_at, self._backoff_s = None, _FIRST_BACKOFF_S

    def _publish_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._stats_at < _STATS_EVERY_S:
            return
        self._stats_at = now
        self.stats.pending_rows = self._batch.rows
        try:
            self.stats.lag_messages = self._lag()
            self._redis.hset(SINK_STATS, mapping={**asdict(self.stats), "worker": self._worker_id,
                                                  "updated_at_ms": int(time.time() * 1000)})
        except (KafkaException, redis.RedisError) as exc:
            log.warning("ClickHouse sink stats not published: %s", exc)

    def _lag(self) -> int:
        """Messages not committed yet: read into the batch, or not read (high watermark minus
        position). From librdkafka's local state: no broker round trip on the sink's path."""
        unread = 0
        for tp in self._consumer.position(self._consumer.assignment()):
            _, high = self._consumer.get_watermark_offsets(tp, cached=True) or (0, 0)
            if tp.offset >= 0 and high >= 0:
                unread += max(0, high - tp.offset)
        return unread + self._batch.read
