"""Decoded events as numpy columns: what the window logic computes on, one batch at a time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inferwatch.processors.windows.keys import KeySet, SeriesKey

STATUSES = ("OK", "ERROR", "TIMEOUT", "FILTERED")
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
    quality_scores: list[dict]  # per event, usually empty

    def __len__(self) -> int:
        return int(self.ts_ms.size)

    @classmethod
    def from_events(cls, events: list[dict], keysets: list[KeySet]) -> EventBatch:
        def keyed(keyset: KeySet) -> KeyedSeries:
            ids: dict[tuple, int] = {}
            fields = keyset.fields
            index = np.fromiter(
                (ids.setdefault(tuple(e[f] for f in fields), len(ids)) for e in events),
                dtype=np.int32, count=len(events),
            )
            return KeyedSeries(keyset, [SeriesKey(keyset.name, fields, values) for values in ids], index)

        def floats(name: str) -> np.ndarray:
            return np.array([np.nan if e[name] is None else e[name] for e in events], dtype=np.float64)

        return cls(
            keyed=[keyed(keyset) for keyset in keysets],
            ts_ms=np.fromiter((e["ts"] for e in events), dtype=np.int64, count=len(events)),
            status=np.fromiter((STATUS_CODE[e["status"]] for e in events), dtype=np.int8, count=len(events)),
            latency_ms=np.fromiter((e["latency_ms"] for e in events), dtype=np.float64, count=len(events)),
            input_tokens=np.fromiter((e["input_tokens"] for e in events), dtype=np.int64, count=len(events)),
            output_tokens=np.fromiter((e["output_tokens"] for e in events), dtype=np.int64, count=len(events)),
            cost_usd=floats("cost_usd"),
            ttft_ms=floats("ttft_ms"),
            error_type=np.array([e["error_type"] for e in events], dtype=object),
            quality_scores=[e["quality_scores"] for e in events],
        )
