"""Messages into windows, and windows into live updates: the worker's logic, without I/O.

decode -> dead letters for what does not decode -> windows (per partition), for inference
events (`process`) and for feedback (`process_feedback`); and, on the live-update tick, what
changed (open and closed windows, the rules' alerts, counters, messages now ackable) as one
LiveUpdate. Where that goes, and in which order, is the committer's business (committer.py);
stream_processor.py feeds this from Faust's streams.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from inferwatch.processors.decoding import DecodedMessages, Decoder, decode_messages
from inferwatch.processors.drift.adwin import AdwinDetectors, Detection, detection_row
from inferwatch.processors.drift.learner import ProfileLearner
from inferwatch.processors.drift.scorer import DriftScorer, Profiles
from inferwatch.processors.rules import configured as configured_rules
from inferwatch.processors.windows.aggregate import WindowAggregate
from inferwatch.processors.windows.longer import LongerWindows, DueWindow
from inferwatch.processors.windows.feedback import FeedbackWindows
from inferwatch.processors.windows.keys import parse_keysets
from inferwatch.processors.windows.panes import Panes
from inferwatch.schemas.wire import EventCodec, WireFormatError
from inferwatch.settings import Settings

log = logging.getLogger(__name__)

_LOGGED_DEAD_LETTERS = 5  # per take


@dataclass(frozen=True)
class RawMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    # Kafka timestamp (epoch ms): the reference an event's ts is checked against (schemas/validation.py)
    timestamp_ms: int = 0
    ack_token: object = None  # handed back in LiveUpdate.ackable once its offset may be committed


@dataclass(frozen=True)
class DeadLetter:
    """A message refused whole, or one event of it (`event_index`, `payload` the event alone)."""

    message: RawMessage
    reason: str
    event_index: int | None = None
    payload: bytes | None = None

    @property
    def value(self) -> bytes:
        return (self.message.value or b"") if self.payload is None else self.payload

    def as_row(self, received_at_ms: int) -> dict:
        event = "" if self.event_index is None else f"event {self.event_index}: "
        return {
            "received_at": received_at_ms,
            "topic": self.message.topic,
            "partition": self.message.partition,
            "offset": self.message.offset,
            "reason": event + self.reason,
            "payload": self.value,
        }


@dataclass
class BatchOutcome:
    events: int  # valid, late ones included (the ClickHouse sink stores every valid event raw)
    dead_letters: list[DeadLetter]
    late: int


@dataclass
class LiveUpdate:
    open_windows: list[dict]
    closed_windows: list[dict]
    alerts: list[dict]
    counters: dict[str, int] = field(default_factory=dict)
    drift: list[dict] = field(default_factory=list)  # drift_metrics rows of the panes closed now (drift/scorer.py)
    learned_profiles: Profiles = field(default_factory=dict)  # provisional profiles learned now, to store
    detections: list[dict] = field(default_factory=list)  # ADWIN's changes found since the last update (also in drift)
    late_by_series: dict[str, int] = field(default_factory=dict)  # "<keyset>:<series>" -> late events
    # Longer windows now final, to merge from their panes' finalised states (longer.py).
    due_windows: list[DueWindow] = field(default_factory=list)
    # Messages whose windows are all closed (and written with this update): commit them after.
    # (Raw rows are the ClickHouse sink's business: it commits its own offsets after inserting.)
    ackable: list[object] = field(default_factory=list)
    written: set[str] = field(default_factory=set)  # the sinks this update already reached


class PendingAcks:
    """Messages whose windows are not all closed yet, in order: (closed_by_ms, partition, token)."""

    def __init__(self) -> None:
        self._entries: list[tuple[int, int, object]] = []

    def add(self, closed_by_ms: int, partition: int, tokens: list[object]) -> None:
        """closed_by_ms 0: ackable at once (a dead letter)."""
        self._entries.extend((closed_by_ms, partition, token) for token in tokens)

    def release(self, watermark_ms: float | None) -> list[object]:
        """The tokens whose windows the watermark has closed; the others stay."""
        ackable, self._entries = _split(
            self._entries, lambda e: e[0] == 0 or (watermark_ms is not None and e[0] <= watermark_ms))
        return [token for _, _, token in ackable]

    def drop_partitions(self, partitions: set[int]) -> None:
        self._entries = [e for e in self._entries if e[1] not in partitions]

    def feeds_open_windows(self, partition: int) -> bool:
        """Whether messages of this partition wait for windows to close (not dead letters)."""
        return any(closed_by and p == partition for closed_by, p, _ in self._entries)


class WindowPipeline:
    def __init__(self, settings: Settings, codec: EventCodec):
        self.codec = codec
        self.keysets = parse_keysets(settings.window_keys)
        self.decoder = Decoder.build(codec.ids, settings.window_keys, settings.event_limits)
        # All the topic's partitions count as assigned until revoked; one this worker never reads
        # holds event time back for partition_idle_seconds only (watermark.py).
        timing = (settings.window_seconds, settings.allowed_lateness_seconds, settings.partition_idle_seconds)
        partitions = tuple(range(settings.kafka_partitions))
        self.windows = Panes(*timing, partitions=partitions, max_series=settings.max_series_per_keyset)
        self.feedback_windows = FeedbackWindows(*timing, partitions=partitions, max_series=settings.max_series_per_keyset)
        self.composite = LongerWindows(
            settings.longer_window_specs,
            settings.window_seconds, self.windows.lateness_ms,
        )
        self.rules = configured_rules(settings, self.keysets)
        learner = (ProfileLearner(settings.drift_reference_panes, settings.drift_min_events)
                   if settings.drift_reference_panes else None)
        groups = tuple(k.name for k in self.keysets[1:] if {"service", "model"} <= set(k.fields) and not k.spans_partitions)
        self.drift = DriftScorer(self.keysets[0].name, settings.drift_persistence, learner, groups)
        self.adwin = (AdwinDetectors(self.keysets[0].name, settings.adwin_delta, settings.max_series_per_keyset)
                      if settings.adwin_delta else None)
        self._detections: list[Detection] = []
        self._touched: dict[int, WindowAggregate] = {}
        self._event_acks, self._feedback_acks = PendingAcks(), PendingAcks()
        self._feedback_changed = False  # feedback arrived since the last live update
        self._counters = dict.fromkeys(
            ("events", "batch_messages", "dead_letters", "invalid_events", "late_events", "feedback",
             "late_feedback"), 0)

    def process(self, messages: list[RawMessage], wall_ms: float | None = None) -> BatchOutcome:
        """Decode in this process, then `apply` (decode_processes = 0, and the tests)."""
        return self.apply(messages, decode_messages(self.decoder, decode_items(messages)), wall_ms)

    def apply(self, messages: list[RawMessage], decoded: DecodedMessages, wall_ms: float | None = None) -> BatchOutcome:
        """Messages and their decoded columns (decoding.py, possibly from another process) into the windows."""
        wall_ms = time.time() * 1000 if wall_ms is None else wall_ms
        dead_letters = [DeadLetter(messages[i], reason) for i, reason in sorted(decoded.errors.items())]
        invalid = [DeadLetter(messages[i.message_index], i.reason, i.event_index, i.payload) for i in decoded.invalid]
        tokens_by_partition: dict[int, list[object]] = {}
        for index, message in enumerate(messages):
            if index in decoded.errors:
                self._event_acks.add(0, message.partition, [message.ack_token])  # a dead letter: at once
            else:
                tokens_by_partition.setdefault(message.partition, []).append(message.ack_token)
        late = 0
        for partition, tokens in tokens_by_partition.items():
            batch = decoded.batches.get(partition)
            if batch is None:  # messages holding no event
                self._event_acks.add(0, partition, tokens)
                continue
            result = self.windows.add(batch, partition, wall_ms)
            if self.adwin is not None:
                self._detections += self.adwin.update(batch)
            late += result.late
            for window in result.touched:
                self._touched[id(window)] = window
            self._event_acks.add(result.closed_by_ms, partition, tokens)
        self._counters["events"] += decoded.events
        self._counters["batch_messages"] += len(messages) - len(dead_letters)
        self._counters["late_events"] += late
        self._counters["invalid_events"] += len(invalid)
        self._record_dead_letters(dead_letters + invalid)
        return BatchOutcome(decoded.events, dead_letters + invalid, late)

    def refuse(self, messages: list[RawMessage], reason: str) -> BatchOutcome:
        """Dead-letter these messages whole, unread (a take that kills the decoders)."""
        return self.apply(messages, DecodedMessages({}, dict.fromkeys(range(len(messages)), reason), [], 0))

    def process_feedback(self, messages: list[RawMessage], wall_ms: float | None = None) -> list[DeadLetter]:
        """Feedback messages (one FeedbackEvent each) into the feedback windows; returns the dead letters."""
        wall_ms = time.time() * 1000 if wall_ms is None else wall_ms
        by_partition: dict[int, tuple[list[dict], list[object]]] = {}
        dead_letters = []
        for message in messages:
            try:
                record = self.codec.decode_feedback(message.value)
            except WireFormatError as exc:
                dead_letters.append(DeadLetter(message, str(exc)))
                self._feedback_acks.add(0, message.partition, [message.ack_token])  # at once
                continue
            records, tokens = by_partition.setdefault(message.partition, ([], []))
            records.append(record)
            tokens.append(message.ack_token)
        self._record_dead_letters(dead_letters)
        for partition, (records, tokens) in by_partition.items():
            late, closed_by = self.feedback_windows.add(records, partition, wall_ms)
            self._feedback_acks.add(closed_by, partition, tokens)
            self._counters["feedback"] += len(records)
            self._counters["late_feedback"] += late
            self._feedback_changed = True
        return dead_letters

    def _record_dead_letters(self, dead_letters: list[DeadLetter]) -> None:
        self._counters["dead_letters"] += len(dead_letters)
        # A misbehaving producer can send thousands a second: the log shows a few, the counters all.
        for dead in dead_letters[:_LOGGED_DEAD_LETTERS]:
            event = "" if dead.event_index is None else f" event {dead.event_index}"
            log.warning("dead letter %s[%d]@%d%s: %s", dead.message.topic, dead.message.partition,
                        dead.message.offset, event, dead.reason)
        if len(dead_letters) > _LOGGED_DEAD_LETTERS:
            log.warning("... and %d more dead letters in this take", len(dead_letters) - _LOGGED_DEAD_LETTERS)

    def live_update(self, wall_ms: float | None = None) -> LiveUpdate:
        """Close due windows, evaluate the rules and collect what changed since the last update."""
        wall_ms = time.time() * 1000 if wall_ms is None else wall_ms
        touched = list(self._touched.values())
        self._touched.clear()
        closed = self.windows.close_due(wall_ms)
        watermark_ms = self.windows.watermark.current(wall_ms)
        self.composite.add_closed_panes(closed)
        due_windows = self.composite.close_due(watermark_ms)
        closed_ids = {id(w) for w in closed}
        open_panes = [w for w in touched if id(w) not in closed_ids]
        open_composites = self.composite.open_windows(touched, self.windows.open)
        closed_feedback = self.feedback_windows.close_due(wall_ms)
        open_feedback = list(self.feedback_windows.open.values()) if self._feedback_changed else []
        self._feedback_changed = False
        open_windows = [w.snapshot() for w in open_panes + open_composites + open_feedback]
        drift = self.drift.score(closed, int(wall_ms))
        scores = self.drift.pane_fields(drift)
        detections, self._detections = [detection_row(d, int(wall_ms)) for d in self._detections], []
        # Closed panes carry their state (the longer windows are merged from the finalised ones)
        # and, the model series', their drift scores.
        closed_windows = ([{**w.snapshot(), "state": w.to_state(), **scores.get(self.drift.pane_key(w), {})}
                           for w in closed] + [w.snapshot() for w in closed_feedback])
        alerts = [alert for rule in self.rules for alert in rule.evaluate(open_windows + closed_windows, watermark_ms)]
        for alert in alerts:
            log.warning("ALERT %s", alert.message)
        counters, self._counters = self._counters, dict.fromkeys(self._counters, 0)
        overflow = self.windows.take_overflow_counts() | self.feedback_windows.take_overflow_counts()
        counters.update({f"overflow_events:{keyset}": n for keyset, n in overflow.items()})
        ackable = (self._event_acks.release(watermark_ms)
                   + self._feedback_acks.release(self.feedback_windows.watermark.current(wall_ms)))
        return LiveUpdate(
            open_windows=open_windows,
            closed_windows=closed_windows,
            due_windows=due_windows,
            alerts=[a.as_dict() for a in alerts],
            counters=counters,
            drift=drift + detections,
            detections=detections,
            learned_profiles=self.drift.take_learned(),
            late_by_series={f"{key.keyset}:{key.label}": n for key, n in self.windows.take_late_counts().items()},
            ackable=ackable,
        )

    def handoff(self, event_partitions: set[int]) -> dict[int, dict]:
        """Per partition about to be revoked, what its next owner needs to finish the longer
        windows of its streams (LongerWindows.handoff) and to go on with its event time."""
        return {p: {"clock": self.windows.watermark.clock(p), "pending": self._event_acks.feeds_open_windows(p),
                    **self.composite.handoff({p})} for p in event_partitions}

    def resume(self, partition: int, handoff: dict, pane_states: list[dict | None], wall_ms: float | None = None) -> None:
        """Take over an assigned partition's handoff (pane states: of `composite.handoff_pane_ids`)."""
        wall_ms = time.time() * 1000 if wall_ms is None else wall_ms
        self.windows.watermark.resume(partition, handoff["clock"], handoff["pending"], wall_ms)
        self.composite.resume(handoff, pane_states)

    def drop_partitions(self, event_partitions: set[int], feedback_partitions: set[int]) -> None:
        """This worker no longer reads these partitions of the events and feedback topics
        (rebalance): drop what came from them.

        Their uncommitted messages go to the new owner, which rebuilds those windows from them.
        """
        self.windows.drop_partitions(event_partitions)
        self.composite.drop_partitions(event_partitions)
        self._touched = {k: w for k, w in self._touched.items() if not w.partitions & event_partitions}
        self._event_acks.drop_partitions(event_partitions)
        self.feedback_windows.drop_partitions(feedback_partitions)
        self._feedback_acks.drop_partitions(feedback_partitions)


def decode_items(messages: list[RawMessage]) -> list[tuple[int, bytes | None, int]]:
    """What decode_messages needs of each message (picklable, for the decoder processes)."""
    return [(m.partition, m.value, m.timestamp_ms) for m in messages]


def _split(items: list, condition) -> tuple[list, list]:
    """(items meeting the condition, the others), each in order."""
    met, rest = [], []
    for item in items:
        (met if condition(item) else rest).append(item)
    return met, rest
