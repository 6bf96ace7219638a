"""Decoded events as numpy columns: what the window logic computes on, one batch at a time."""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter

import numpy as np

from inferwatch.processors.windows.keys import KeySet, SeriesKey
from inferwatch.schemas.wire import STATUSES

STATUS_CODE = {name: code for code, name in enumerate(STATUSES)}


@dataclass(frozen=True)
class KeyedSeries:
    """The series of one key set in a batch."""

    keyset: KeySet
    series: list[SeriesKey]  # distinct series in this batch
    index: np.ndarray  # int32, per event: index into `series`


@dataclass(frozen=True)
class EventBatch:
    keyed: list[KeyedSeries]  # one per key set, in the key sets' order
    ts_ms: np.ndarray  # int64 epoch ms
    status: np.ndarray  # int8 code into STATUSES
    latency_ms: np.ndarray  # float64
    input_tokens: np.ndarray  # int64
    output_tokens: np.ndarray  # int64
    cost_usd: np.ndarray  # float64, NaN where the event had no cost
    ttft_ms: np.ndarray  # float64, NaN where the response was not streamed
    error_type: np.ndarray  # object: str, or None for OK events
    topic: np.ndarray  # object: str, or None
    prompt_chars: np.ndarray  # int64: 0 where the producer saw no text
    response_chars: np.ndarray  # int64
    finish_reason: np.ndarray  # object: str, or None
    quality_scores: list[dict]  # per event, usually empty

    def __len__(self) -> int:
        return int(self.ts_ms.size)

    @classmethod
    def from_events(cls, events: list[dict], keysets: list[KeySet]) -> EventBatch:
        def keyed(keyset: KeySet) -> KeyedSeries:
            # itemgetter gives each event's key in C: a tuple, or the value itself for one field.
            key_of = itemgetter(*keyset.fields) if not keyset.attributes else keyset.key_of
            ids: dict = {}
            index = np.fromiter((ids.setdefault(key_of(e), len(ids)) for e in events), dtype=np.int32, count=len(events))
            values = (key if len(keyset.fields) > 1 else (key,) for key in ids)
            return KeyedSeries(keyset, [SeriesKey(keyset.name, keyset.fields, v) for v in values], index)

        def column(name: str, dtype) -> np.ndarray:
            return np.fromiter(map(itemgetter(name), events), dtype=dtype, count=len(events))

        def strings(name: str) -> np.ndarray:  # None where absent
            return np.array(list(map(itemgetter(name), events)), dtype=object)

        def floats(name: str) -> np.ndarray:  # None (absent) -> NaN
            return np.array(list(map(itemgetter(name), events)), dtype=np.float64)

        return cls(
            keyed=[keyed(keyset) for keyset in keysets],
            ts_ms=column("ts", np.int64),
            status=np.fromiter((STATUS_CODE[s] for s in map(itemgetter("status"), events)), dtype=np.int8,
                               count=len(events)),
            latency_ms=column("latency_ms", np.float64),
            input_tokens=column("input_tokens", np.int64),
            output_tokens=column("output_tokens", np.int64),
            cost_usd=floats("cost_usd"),
            ttft_ms=floats("ttft_ms"),
            error_type=strings("error_type"),
            topic=strings("topic"),
            prompt_chars=column("prompt_chars", np.int64),
            response_chars=column("response_chars", np.int64),
            finish_reason=strings("finish_reason"),
            quality_scores=list(map(itemgetter("quality_scores"), events)),
        )
