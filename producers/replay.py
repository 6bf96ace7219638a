"""`inferwatch replay`: real arrival times and token counts from a trace, served by the model.

The trace (e.g. the Azure LLM inference trace: TIMESTAMP, ContextTokens, GeneratedTokens) gives
when each request arrived and how many tokens went in and out. Latency, TTFT, status and cost
are not in it: they come from the serving model in traffic_model.py (prefill/decode rates per
model), so they are *modelled*, and every replayed event says so in its attributes
(`latency_source=modelled`). Arrival times keep their spacing, compressed `speed` times, and are
shifted so the replay starts now.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from inferwatch.producers.publisher import EventPublisher
from inferwatch.producers.traffic_model import FLEET, TrafficModel
from inferwatch.settings import Settings

TRACE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
# The Azure LLM inference trace 2023 (conversation), shipped with its attribution (data/README.md).
AZURE_TRACE = Path(__file__).parent / "data" / "azure_llm_inference_trace_conv_2023.csv"
CHUNK = 200  # events generated at a time while pacing


@dataclass(frozen=True)
class Trace:
    offset_ms: np.ndarray  # arrival time since the first request
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    def __len__(self) -> int:
        return int(self.offset_ms.size)


def load_trace(path: str | Path) -> Trace:
    """Read and check a trace CSV; ValueError names the file, the line and what is wrong."""
    try:
        frame = pd.read_csv(path, dtype=str)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"{path}: cannot read as CSV: {exc}") from exc
    missing = [c for c in TRACE_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; expected {', '.join(TRACE_COLUMNS)}")
    arrival = pd.to_datetime(frame["TIMESTAMP"], errors="coerce")
    tokens = {c: pd.to_numeric(frame[c], errors="coerce") for c in TRACE_COLUMNS[1:]}
    bad = arrival.isna() | tokens["ContextTokens"].isna() | tokens["GeneratedTokens"].isna() | \
        (tokens["ContextTokens"] < 0) | (tokens["GeneratedTokens"] < 0)
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{path}: line {first + 2}: bad row {frame.iloc[first].to_dict()} "
                         f"({int(bad.sum())} bad rows in all)")
    if len(frame) == 0:
        raise ValueError(f"{path}: no requests")
    order = np.argsort(arrival.to_numpy(), kind="stable")
    arrival_ns = arrival.to_numpy().astype("datetime64[ns]").astype(np.int64)[order]
    return Trace(
        offset_ms=(arrival_ns - arrival_ns[0]) // 1_000_000,
        input_tokens=tokens["ContextTokens"].to_numpy(np.int64)[order],
        output_tokens=tokens["GeneratedTokens"].to_numpy(np.int64)[order],
    )


def _fleet(service: str | None, model: str | None):
    """The fleet to serve the trace: all of FLEET, or one (possibly renamed) profile."""
    if service is None and model is None:
        return FLEET
    base = next((p for p in FLEET if p.model == model), FLEET[0])
    return (replace(base, service=service or base.service, model=model or base.model, weight=1.0),)


def replay(settings: Settings, trace: Trace, speed: float = 1.0, service: str | None = None,
           model: str | None = None, seed: int | None = None,
           on_progress: Callable[[int, int], None] | None = None) -> EventPublisher:
    if speed <= 0:
        raise ValueError("speed must be positive")
    traffic = TrafficModel(seed, fleet=_fleet(service, model))
    publisher = EventPublisher(settings)
    start_ms = time.time() * 1000
    due_wall_s = trace.offset_ms / speed / 1000
    started = time.monotonic()
    next_report = 1.0
    for first in range(0, len(trace), CHUNK):
        chunk = slice(first, first + CHUNK)
        ts = (start_ms + trace.offset_ms[chunk] / speed).astype(np.int64)
        events = traffic.events(ts, input_tokens=trace.input_tokens[chunk], output_tokens=trace.output_tokens[chunk])
        for event, due in zip(events, due_wall_s[chunk]):
            wait = due - (time.monotonic() - started)
            if wait > 0:
                publisher.poll()
                time.sleep(wait)  # pacing to the trace's arrival times, not synchronisation
            event["attributes"] = {"latency_source": "modelled", "replay_of": "trace"}
            publisher.publish(event)
        publisher.poll()
        if on_progress and time.monotonic() - started >= next_report:
            next_report += 1.0
            on_progress(min(first + CHUNK, len(trace)), len(trace))
    if publisher.flush() or publisher.stats.events_failed:
        raise RuntimeError(f"replay: {publisher.stats.events_failed} events failed: {publisher.stats.last_error}")
    return publisher
