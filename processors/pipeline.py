"""What the worker does with each batch of Kafka messages, independent of Faust.

decode -> dead letters for what does not decode -> windows (per partition) -> raw rows for
ClickHouse; and, on the live-update tick, open windows to Redis, closed windows to Redis and
ClickHouse, alerts to Redis, ClickHouse and the log. The Faust agent (processors/app.py) only
feeds it messages and runs its I/O off the event loop.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from inferwatch.processors.alerts.p99_latency import P99LatencyRule
from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.windows.aggregate import WindowAggregate
from inferwatch.processors.windows.composite import CompositeWindows, WindowSpec
from inferwatch.processors.windows.keys import parse_keysets
from inferwatch.processors.windows.tumbling import TumblingWindows
from inferwatch.schemas.wire import EventCodec, WireFormatError
from inferwatch.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    ack_token: object = None  # handed back in LiveUpdate.ackable once its offset may be committed


@dataclass(frozen=True)
class DeadLetter:
    message: RawMessage
    reason: str

    def as_row(self, received_at_ms: int) -> dict:
        return {
            "received_at": received_at_ms,
            "topic": self.message.topic,
            "partition": self.message.partition,
            "offset": self.message.offset,
            "reason": self.reason,
            "payload": self.message.value or b"",
        }


@dataclass
class BatchOutcome:
    events: list[dict]  # every decoded event, late ones included: all are stored raw
    dead_letters: list[DeadLetter]
    late: int


@dataclass
class LiveUpdate:
    open_windows: list[dict]
    closed_windows: list[dict]
    alerts: list[dict]
    counters: dict[str, int] = field(default_factory=dict)
    late_by_series: dict[str, int] = field(default_factory=dict)  # "<keyset>:<series>" -> late events
    # Messages whose windows are all closed (and written with this update): commit them after.
    # (Raw rows are the ClickHouse sink's business: it commits its own offsets after inserting.)
    ackable: list[object] = field(default_factory=list)
    written: set[str] = field(default_factory=set)  # the sinks this update already reached


class MonitoringPipeline:
    def __init__(self, settings: Settings, codec: EventCodec):
        self.codec = codec
        self.keysets = parse_keysets(settings.window_keys)
        self.windows = TumblingWindows(
            settings.window_seconds,
            settings.allowed_lateness_seconds,
            settings.partition_idle_seconds,
            # All the topic's partitions count as assigned until revoked; one this worker never
            # reads holds event time back for partition_idle_seconds only (watermark.py).
            partitions=tuple(range(settings.kafka_partitions)),
        )
        self.composite = CompositeWindows(
            [WindowSpec.parse(text, settings.window_seconds) for text in settings.extra_windows],
            settings.window_seconds, self.windows.lateness_ms,
        )
        self.p99_rule = P99LatencyRule(
            settings.alert_p99_latency_ms, settings.alert_min_events, keyset=self.keysets[0].name
        )
        self._touched: dict[int, WindowAggregate] = {}
        self._unacked: list[tuple[int, int, object]] = []  # (closed_by_ms, partition, ack_token)
        self._counters = {"events": 0, "batch_messages": 0, "dead_letters": 0, "late_events": 0}

    def process(self, messages: list[RawMessage], wall_ms: float | None = None) -> BatchOutcome:
        wall_ms = time.time() * 1000 if wall_ms is None else wall_ms
        by_partition: dict[int, list[dict]] = {}
        tokens_by_partition: dict[int, list[object]] = {}
        dead_letters = []
        for message in messages:
            try:
                decoded = self.codec.decode(message.value)
            except WireFormatError as exc:
                dead_letters.append(DeadLetter(message, str(exc)))
                self._unacked.append((0, message.partition, message.ack_token))
                continue
            by_partition.setdefault(message.partition, []).extend(decoded)
            tokens_by_partition.setdefault(message.partition, []).append(message.ack_token)
        events, late = [], 0
        for partition, partition_events in by_partition.items():
            result = self.windows.add(EventBatch.from_events(partition_events, self.keysets), partition, wall_ms)
            late += result.late
            for window in result.touched:
                self._touched[id(window)] = window
            events.extend(partition_events)
            self._unacked.extend((result.closed_by_ms, partition, t) for t in tokens_by_partition[partition])
        self._counters["events"] += len(events)
        self._counters["batch_messages"] += len(messages) - len(dead_letters)
        self._counters["dead_letters"] += len(dead_letters)
        self._counters["late_events"] += late
        for dead in dead_letters:
            log.warning(
                "dead letter %s[%d]@%d: %s", dead.message.topic, dead.message.partition,
                dead.message.offset, dead.reason,
            )
        return BatchOutcome(events, dead_letters, late)

    def live_update(self, wall_ms: float | None = None) -> LiveUpdate:
        """Close due windows, evaluate alerts and collect what changed since the last update."""
        wall_ms = time.time() * 1000 if wall_ms is None else wall_ms
        touched = list(self._touched.values())
        self._touched.clear()
        alerts = self.p99_rule.evaluate(touched)
        closed = self.windows.close_due(wall_ms)
        self.p99_rule.forget_closed(closed)
        self.composite.add_closed_panes(closed)
        closed_composites = self.composite.close_due(self.windows.watermark.current(wall_ms))
        closed_ids = {id(w) for w in closed}
        open_panes = [w for w in touched if id(w) not in closed_ids]
        open_composites = self.composite.open_windows(touched, self.windows.open)
        counters, self._counters = self._counters, dict.fromkeys(self._counters, 0)
        for alert in alerts:
            log.warning("ALERT %s", alert.message)
        watermark = self.windows.watermark.current(wall_ms)
        ackable, self._unacked = _split(self._unacked, lambda u: u[0] == 0 or (watermark is not None and u[0] <= watermark))
        return LiveUpdate(
            open_windows=[w.snapshot() for w in open_panes + open_composites],
            closed_windows=[w.snapshot() for w in closed + closed_composites],
            alerts=[a.as_dict() for a in alerts],
            counters=counters,
            late_by_series={f"{key.keyset}:{key.label}": n for key, n in self.windows.take_late_counts().items()},
            ackable=[token for _, _, token in ackable],
        )

    def drop_partitions(self, partitions: set[int]) -> None:
        """This worker no longer reads these partitions (rebalance): drop what came from them.

        Their uncommitted messages go to the new owner, which rebuilds those windows from them.
        """
        self.windows.drop_partitions(partitions)
        self._touched = {k: w for k, w in self._touched.items() if not w.partitions & partitions}
        self._unacked = [u for u in self._unacked if u[1] not in partitions]


def _split(items: list, condition) -> tuple[list, list]:
    """(items meeting the condition, the others), each in order."""
    met, rest = [], []
    for item in items:
        (met if condition(item) else rest).append(item)
    return met, rest
