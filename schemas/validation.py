"""What a valid InferenceEvent is: one definition, checked in two places that must agree.

Avro only says an event has the right shape; a NaN latency, a `ts` in 2099, negative tokens or a
few thousand distinct quality-score names are all well-formed Avro. Such events would crash the
windows, blind event time or break the ClickHouse insert, so each is checked against the rules
below:
- by the worker's decoders (processors/decoding.py), in numpy over a take's events: an invalid
  event is dead-lettered on its own, the valid events of its message go on;
- by ClickHouse, on the raw log's insert (sinks/clickhouse/kafka_sink.py), through the SQL
  predicate `valid_events_sql` renders from the same rules, so exactly the same events are kept
  out of `inference_events`: analysts and windows agree.

`ts` is checked against the Kafka message's timestamp, the same number on both paths: the broker's
append time on the topics `inferwatch up` creates (message.timestamp.type=LogAppendTime); on a
CreateTime topic it is the producer's (Kafka refuses those more than an hour ahead by default).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter

import numpy as np

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_UUID_RE = re.compile(_UUID)
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_UUID_SEPARATORS = ((8, b"-"), (13, b"-"), (18, b"-"), (23, b"-"), (36, b"\n"))


@dataclass(frozen=True)
class EventLimits:
    """The bounds of a valid event: Settings fields of the same names, documented there."""

    max_event_age_seconds: float
    max_clock_skew_seconds: float
    max_latency_ms: float
    max_tokens: int
    max_label_chars: int
    max_text_chars: int
    max_map_entries: int
    max_events_per_message: int


class Rule:
    """One condition on one field. `bad` and `valid_sql` are the same condition, twice.

    `bad` runs on every take in the decoders (~500 events a message), so each rule first checks
    the whole batch with C-level loops (map, max, numpy) and builds a per-event mask only when
    something is wrong: ~1 µs an event for all the rules, against ~15 for decoding."""

    field: str
    text: str  # what a valid value is, for the dead-letter reason and the docs

    def values(self, events: Sequence[dict]) -> list:
        return list(map(itemgetter(self.field), events))

    def bad(self, events: Sequence[dict], ref_ms: np.ndarray) -> np.ndarray | None:
        """Per event, whether it breaks the rule; None if none does."""
        raise NotImplementedError

    def valid_sql(self, ref: str) -> str:
        """ClickHouse condition on the ARRAY JOINed event `e`; `ref` is the reference time (ms)."""
        raise NotImplementedError

    def sql_value(self) -> str:
        return f"tupleElement(e, '{self.field}')"


@dataclass(frozen=True)
class Number(Rule):
    field: str
    lo: float
    hi: float
    nullable: bool = False
    parent: str = ""  # the nullable record holding the field (resources), else ""

    @property
    def text(self) -> str:
        name = f"{self.parent}.{self.field}" if self.parent else self.field
        return f"{name} must be {'null or ' if self.nullable else ''}a finite number in [{_num(self.lo)}, {_num(self.hi)}]"

    def values(self, events):
        if self.parent:
            return [(e[self.parent] or {}).get(self.field) for e in events]
        return super().values(events)

    def bad(self, events, ref_ms):
        if self.parent and not any(map(itemgetter(self.parent), events)):  # most events report none
            return None
        raw = self.values(events)
        nulls = raw.count(None) if self.nullable else 0
        if nulls == len(raw):
            return None
        values = np.array(raw, dtype=np.float64)  # None -> NaN: told apart from a NaN sent below
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(values) & (values >= self.lo) & (values <= self.hi)
        if int(ok.sum()) + nulls == len(raw):  # every value in range, or null
            return None
        if not nulls:
            return ~ok
        return ~ok & ~np.fromiter((v is None for v in raw), dtype=bool, count=len(raw))

    def sql_value(self):
        if self.parent:
            return f"tupleElement(tupleElement(e, '{self.parent}'), '{self.field}')"
        return super().sql_value()

    def valid_sql(self, ref):
        x = self.sql_value()
        condition = f"(isFinite({x}) AND {x} >= {_num(self.lo)} AND {x} <= {_num(self.hi)})"
        return f"(isNull({x}) OR {condition})" if self.nullable else condition


@dataclass(frozen=True)
class Chars(Rule):
    field: str
    max_chars: int
    min_chars: int = 0
    nullable: bool = False

    @property
    def text(self):
        return f"{self.field} must be {'null or ' if self.nullable else ''}{self.min_chars}..{self.max_chars} characters"

    def bad(self, events, ref_ms):
        values = self.values(events)
        lengths = list(map(len, filter(None, values) if self.nullable else values))
        if max(lengths, default=0) <= self.max_chars and min(lengths, default=0) >= self.min_chars:
            return None
        lengths = np.fromiter((0 if v is None else len(v) for v in values), dtype=np.int64, count=len(events))
        bad = lengths > self.max_chars
        if self.min_chars:
            bad |= lengths < self.min_chars
        return bad

    def valid_sql(self, ref):
        n = f"lengthUTF8({self.sql_value()})"
        condition = f"{n} <= {self.max_chars}" + (f" AND {n} >= {self.min_chars}" if self.min_chars else "")
        return f"(isNull({self.sql_value()}) OR ({condition}))" if self.nullable else f"({condition})"


@dataclass(frozen=True)
class Uuid(Rule):
    field: str

    @property
    def text(self):
        return f"{self.field} must be a UUID (8-4-4-4-12 hex digits)"

    def bad(self, events, ref_ms):
        values = self.values(events)
        if _all_uuids(values):
            return None
        return np.fromiter((_UUID_RE.fullmatch(v) is None for v in values), dtype=bool, count=len(events))

    def valid_sql(self, ref):
        return f"match({self.sql_value()}, '^{_UUID}$')"


def _all_uuids(values: list[str]) -> bool:
    """Whether every value is a UUID, in a few C-level passes over all of them at once: joined
    one a line, n UUIDs are 37 * n bytes with '-' and newlines at fixed places and hex elsewhere."""
    n = len(values)
    lines = ("\n".join(values) + "\n").encode()
    return (len(lines) == 37 * n and lines.translate(None, _HEX_DIGITS) == b"----\n" * n
            and all(lines[i::37] == c * n for i, c in _UUID_SEPARATORS))


@dataclass(frozen=True)
class EventTime(Rule):
    field: str
    max_age_ms: int
    max_ahead_ms: int

    @property
    def text(self):
        return (f"{self.field} must be within {self.max_age_ms / 1000:g} s before and {self.max_ahead_ms / 1000:g} s "
                "after the Kafka message's timestamp")

    def bad(self, events, ref_ms):
        ts = np.fromiter(self.values(events), dtype=np.int64, count=len(events))
        bad = (ts < ref_ms - self.max_age_ms) | (ts > ref_ms + self.max_ahead_ms)
        return bad if bad.any() else None

    def valid_sql(self, ref):
        x = self.sql_value()
        return f"({x} >= {ref} - {self.max_age_ms} AND {x} <= {ref} + {self.max_ahead_ms})"


@dataclass(frozen=True)
class NameMap(Rule):
    """A map of names (at most `max_entries`, names of at most `max_key_chars`) to finite
    numbers (`max_value_chars` 0) or to strings of at most `max_value_chars`."""

    field: str
    max_entries: int
    max_key_chars: int
    max_value_chars: int = 0

    @property
    def text(self):
        values = f"strings of at most {self.max_value_chars} characters" if self.max_value_chars else "finite numbers"
        return (f"{self.field} must be a map of at most {self.max_entries} names of at most "
                f"{self.max_key_chars} characters, to {values}")

    def bad(self, events, ref_ms):
        values = self.values(events)
        if all(map(self._ok, filter(None, values))):  # most maps are empty
            return None
        return np.fromiter((not self._ok(m) for m in values), dtype=bool, count=len(events))

    def _ok(self, mapping: dict) -> bool:
        if len(mapping) > self.max_entries or any(len(k) > self.max_key_chars for k in mapping):
            return False
        if self.max_value_chars:
            return all(len(v) <= self.max_value_chars for v in mapping.values())
        return all(math.isfinite(v) for v in mapping.values())

    def valid_sql(self, ref):
        m = self.sql_value()
        values = (f"arrayAll(v -> lengthUTF8(v) <= {self.max_value_chars}, mapValues({m}))" if self.max_value_chars
                  else f"arrayAll(v -> isFinite(v), mapValues({m}))")
        return (f"(length({m}) <= {self.max_entries} AND arrayAll(k -> lengthUTF8(k) <= {self.max_key_chars}, "
                f"mapKeys({m})) AND {values})")


# String fields of the schema (and where they sit): every one must be valid UTF-8, as the
# worker's Avro decoder requires of the whole message.
_STRINGS = ("event_id", "service", "route", "model", "model_version", "tenant_id", "user_id", "request_id",
            "trace_id", "span_id", "status", "error_type", "finish_reason", "topic", "prompt_text", "response_text")
_STRING_MAPS = ("attributes",)
_NAME_MAPS = ("quality_scores", "attributes")


def event_rules(limits: EventLimits) -> list[Rule]:
    """The rules, in the order a dead letter's reason names the first one broken."""
    label, text = limits.max_label_chars, limits.max_text_chars
    return [
        Uuid("event_id"),
        EventTime("ts", int(limits.max_event_age_seconds * 1000), int(limits.max_clock_skew_seconds * 1000)),
        *(Chars(name, label, min_chars=1) for name in ("service", "model")),  # the partition key
        *(Chars(name, label) for name in ("route", "model_version", "tenant_id")),
        *(Chars(name, label, nullable=True) for name in ("user_id", "request_id", "trace_id", "span_id",
                                                         "error_type", "finish_reason", "topic")),
        *(Chars(name, text, nullable=True) for name in ("prompt_text", "response_text")),
        Number("latency_ms", 0, limits.max_latency_ms),
        Number("ttft_ms", 0, limits.max_latency_ms, nullable=True),
        *(Number(name, 0, limits.max_tokens) for name in ("input_tokens", "output_tokens")),
        *(Number(name, 0, 2**31 - 1) for name in ("prompt_chars", "response_chars")),
        Number("cost_usd", 0, 1e6, nullable=True),
        *(Number(name, 0, 1, nullable=True) for name in ("prompt_oov_rate", "confidence")),
        NameMap("quality_scores", limits.max_map_entries, label),
        NameMap("attributes", limits.max_map_entries, label, max_value_chars=label),
        *(Number(name, 0, math.inf if name.endswith("_mb") else 1, nullable=True, parent="resources")
          for name in ("gpu_util", "cpu_util", "gpu_mem_mb", "mem_mb")),
    ]


def invalid_events(rules: list[Rule], events: Sequence[dict], ref_ms: np.ndarray) -> dict[int, str]:
    """Index of each invalid event -> why (the first rule it breaks and the value it had)."""
    if not events:
        return {}
    bad_by_rule = [(rule, bad) for rule in rules if (bad := rule.bad(events, ref_ms)) is not None]
    reasons: dict[int, str] = {}
    for rule, bad in reversed(bad_by_rule):  # the first rule broken wins
        for index in np.flatnonzero(bad).tolist():
            value = repr(rule.values(events[index:index + 1])[0])
            reasons[index] = f"{rule.text}; got {value[:80]}{'...' if len(value) > 80 else ''}"
    return dict(sorted(reasons.items()))


def valid_events_sql(rules: list[Rule], ref: str) -> str:
    """The SQL condition that holds for exactly the events `invalid_events` passes (for `e`)."""
    return " AND ".join(rule.valid_sql(ref) for rule in rules)


def decodable_message_sql(events: str) -> str:
    """SQL condition on a message's array of events that holds when the worker's decoder would
    decode it at all: Avro strings must be UTF-8, else the whole message is a dead letter."""
    checks = [f"isValidUTF8(ifNull(tupleElement(e, '{name}'), ''))" for name in _STRINGS]
    checks += [f"arrayAll(k -> isValidUTF8(k), mapKeys(tupleElement(e, '{name}')))" for name in _NAME_MAPS]
    checks += [f"arrayAll(v -> isValidUTF8(v), mapValues(tupleElement(e, '{name}')))" for name in _STRING_MAPS]
    return f"arrayAll(e -> {' AND '.join(checks)}, {events})"


def _num(x: float) -> str:
    """A bound as both Python and ClickHouse read it."""
    if math.isinf(x):
        return "inf"
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def rules_markdown(limits: EventLimits) -> str:
    """The list of what a valid event is (docs/architecture.md), at these limits."""
    return "\n".join(f"- {rule.text}" for rule in event_rules(limits))
