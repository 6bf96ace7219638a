"""Hopping and long tumbling windows, built by merging closed panes. Pure logic, no I/O.

The panes of panes.py are tumbling windows (default 1 minute). A window of `size` seconds
that starts every `hop` seconds (hop = size: tumbling) is the merge of the panes it covers; the
sketches merge exactly, so a 5-minute or 1-hour window holds what one window over all its events
would. Pane state is therefore the only per-event work, whatever windows are configured.
A window is final once the watermark passes its end plus the allowed lateness, i.e. once all its
panes are closed; until then `open_windows` gives its partial value for live display, from the
panes this worker holds. The final value is merged from the *finalised* panes' states
(`from_pane_states`; the worker keeps them in Redis), whichever worker finalised each pane: after a
restart or a rebalance, a window spanning it still holds every pane, each once.
Panes merge per stream, (series, source partition): the part of a series that spans partitions
gets its longer windows per partition too (keys.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from inferwatch.durations import parse_duration
from inferwatch.processors.windows.aggregate import WindowAggregate
from inferwatch.processors.windows.keys import SeriesKey

Stream = tuple[SeriesKey, int | None]  # (series, source partition or None)


@dataclass(frozen=True)
class DueWindow:
    """A longer window whose panes are all closed: to be merged from their finalised states."""

    spec: WindowSpec
    series: SeriesKey
    source_partition: int | None
    start_ms: int
    pane_seconds: int

    def pane_ids(self) -> list[dict]:
        """Its panes, identified as their snapshots identify them (see `pane_id`)."""
        return [pane_id(self.series, self.source_partition, start, self.pane_seconds)
                for start in range(self.start_ms, self.start_ms + self.spec.size_seconds * 1000, self.pane_seconds * 1000)]


def pane_id(series: SeriesKey, source_partition: int | None, start_ms: int, pane_seconds: int) -> dict:
    """A pane identified as its snapshot identifies it: keyset, series, size, start, partition."""
    return {"keyset": series.keyset, "series": series.label, "window_seconds": pane_seconds, "hop_seconds": 0,
            "window_start_ms": start_ms, "source_partition": -1 if source_partition is None else source_partition}


@dataclass(frozen=True)
class WindowSpec:
    size_seconds: int
    hop_seconds: int

    @classmethod
    def parse(cls, text: str, pane_seconds: int) -> WindowSpec:
        """"5m/1m" (hopping: size/hop) or "1h" (tumbling); both multiples of the pane."""
        size_text, slash, hop_text = text.strip().partition("/")
        try:
            size = parse_duration(size_text, units="smh")
            hop = parse_duration(hop_text, units="smh") if slash else size
        except ValueError:
            raise ValueError(f"window {text!r}: expected <size><s|m|h>[/<hop><s|m|h>], e.g. 5m/1m or 1h") from None
        if size % pane_seconds or hop % pane_seconds or hop > size or size <= pane_seconds and hop == size:
            raise ValueError(f"window {text!r}: size and hop must be multiples of the {pane_seconds}s pane, "
                             f"hop <= size, and the window longer than a pane")
        return cls(size, hop)

    def starts_covering(self, pane_start_ms: int) -> range:
        """Starts (ms) of this spec's windows that contain the pane starting at pane_start_ms."""
        hop_ms, size_ms = self.hop_seconds * 1000, self.size_seconds * 1000
        last = pane_start_ms - pane_start_ms % hop_ms
        return range(last, pane_start_ms - size_ms, -hop_ms)


class LongerWindows:
    def __init__(self, specs: list[WindowSpec], pane_seconds: int, lateness_ms: int):
        self.specs = specs
        self.pane_ms = pane_seconds * 1000
        self.lateness_ms = lateness_ms
        self.retention_ms = max((s.size_seconds for s in specs), default=0) * 1000
        self._closed_panes: dict[Stream, dict[int, WindowAggregate]] = {}
        self._emitted: set[tuple[WindowSpec, Stream, int]] = set()
        # (spec, stream, start) -> merge of that window's closed panes (None: none has events).
        # Closed panes never change, so a live update merges this and the open panes only,
        # not every pane of the hour again; a pane closing into the window drops the entry.
        self._closed_merges: dict[tuple[WindowSpec, Stream, int], WindowAggregate | None] = {}

    def add_closed_panes(self, panes: list[WindowAggregate]) -> None:
        for pane in panes:
            stream = (pane.series, pane.source_partition)
            self._closed_panes.setdefault(stream, {})[pane.window_start_ms] = pane
            for spec in self.specs:
                for start in spec.starts_covering(pane.window_start_ms):
                    self._closed_merges.pop((spec, stream, start), None)

    def drop_partitions(self, partitions: set[int]) -> None:
        """Streams read from revoked partitions: their new owner closes their windows."""
        dropped = self._streams_of(partitions)
        for stream in dropped:
            del self._closed_panes[stream]
        self._closed_merges = {k: w for k, w in self._closed_merges.items() if k[1] not in dropped}

    def _streams_of(self, partitions: set[int]) -> set[Stream]:
        """The streams with closed panes whose events came from these partitions."""
        return {s for s, panes in self._closed_panes.items() if any(p.partitions & partitions for p in panes.values())}

    def handoff(self, partitions: set[int]) -> dict:
        """What the next owner of these partitions needs to finish their streams' longer windows
        (JSON-able): the closed panes kept for those streams, and which of their windows were
        emitted. Without it, a window whose panes were all closed (and their messages committed)
        before a rebalance would be due on nobody: the new owner re-reads none of its events."""
        streams = self._streams_of(partitions)
        return {
            "panes": [[*_stream_fields(stream), start] for stream in streams for start in self._closed_panes[stream]],
            "emitted": [[spec.size_seconds, spec.hop_seconds, *_stream_fields(stream), start]
                        for spec, stream, start in self._emitted if stream in streams],
        }

    def handoff_pane_ids(self, handoff: dict) -> list[dict]:
        """The panes of a handoff (as `pane_id`s): whose finalised states `resume` needs."""
        return [pane_id(stream[0], stream[1], start, self.pane_ms // 1000) for stream, start in _handoff_panes(handoff)]

    def resume(self, handoff: dict, pane_states: list[dict | None]) -> None:
        """Take over a handoff; `pane_states` are the finalised states of `handoff_pane_ids(handoff)`."""
        self.add_closed_panes([
            WindowAggregate.from_state(stream[0], start, self.pane_ms // 1000, state, stream[1])
            for (stream, start), state in zip(_handoff_panes(handoff), pane_states) if state is not None])
        specs = {(s.size_seconds, s.hop_seconds): s for s in self.specs}
        for size, hop, *fields, start in handoff["emitted"]:
            if (size, hop) in specs:
                self._emitted.add((specs[size, hop], _stream(*fields), start))

    def from_pane_states(self, due: DueWindow, states: list[dict | None]) -> WindowAggregate | None:
        """The window merged from its panes' finalised states (None: a pane without events)."""
        panes = [None if state is None else WindowAggregate.from_state(
            due.series, pane_id["window_start_ms"], due.pane_seconds, state, due.source_partition)
            for pane_id, state in zip(due.pane_ids(), states)]
        return self._merge(due.spec, (due.series, due.source_partition), due.start_ms, panes)

    def _merge(self, spec: WindowSpec, stream: Stream, start_ms: int, panes: list[WindowAggregate | None]) -> WindowAggregate | None:
        window = None
        for pane in panes:
            if pane is None:
                continue
            if window is None:
                window = WindowAggregate(stream[0], start_ms, spec.size_seconds, spec.hop_seconds, stream[1])
            window.merge(pane)
        return window

    def _partial(self, spec: WindowSpec, stream: Stream, start_ms: int, open_panes: dict) -> WindowAggregate | None:
        """The window's value now: its closed panes' merge (cached) and its open panes."""
        series, source_partition = stream
        closed = self._closed_panes.get(stream, {})
        starts = range(start_ms, start_ms + spec.size_seconds * 1000, self.pane_ms)
        key = (spec, stream, start_ms)
        if key not in self._closed_merges:
            self._closed_merges[key] = self._merge(spec, stream, start_ms, [closed.get(s) for s in starts])
        return self._merge(spec, stream, start_ms, [self._closed_merges[key]] + [
            open_panes.get((series, s, source_partition)) for s in starts if s not in closed])

    def close_due(self, watermark_ms: float | None) -> list[DueWindow]:
        """Windows whose end + lateness the watermark passed, each once; then old panes are let go."""
        if watermark_ms is None:
            return []
        final = []
        for stream, panes in self._closed_panes.items():
            for spec in self.specs:
                starts = {s for pane_start in panes for s in spec.starts_covering(pane_start)}
                for start in sorted(starts):
                    key = (spec, stream, start)
                    if key in self._emitted or start + spec.size_seconds * 1000 + self.lateness_ms > watermark_ms:
                        continue
                    self._emitted.add(key)
                    self._closed_merges.pop(key, None)
                    final.append(DueWindow(spec, stream[0], stream[1], start, self.pane_ms // 1000))
        horizon = watermark_ms - self.lateness_ms - self.retention_ms
        for stream, panes in list(self._closed_panes.items()):
            for start in [s for s in panes if s < horizon]:
                del panes[start]
            if not panes:  # else every series ever seen would keep an entry
                del self._closed_panes[stream]
        self._emitted = {k for k in self._emitted if k[2] >= horizon - self.retention_ms}
        # A window this old is due: its merge was popped above unless no closed pane of it ever
        # came (its open panes were dropped with their partition), and would be kept forever.
        self._closed_merges = {k: w for k, w in self._closed_merges.items() if k[2] >= horizon}
        return final

    def open_windows(self, touched_panes: list[WindowAggregate], open_panes: dict) -> list[WindowAggregate]:
        """Partial values of the windows that contain a pane touched since the last update."""
        result, seen = [], set()
        for pane in touched_panes:
            stream = (pane.series, pane.source_partition)
            for spec in self.specs:
                for start in spec.starts_covering(pane.window_start_ms):
                    key = (spec, stream, start)
                    if key not in seen and key not in self._emitted:
                        seen.add(key)
                        result.append(self._partial(spec, stream, start, open_panes))
        return result


def _stream_fields(stream: Stream) -> list:
    series, source_partition = stream
    return [series.keyset, list(series.fields), list(series.values), source_partition]


def _handoff_panes(handoff: dict) -> list[tuple[Stream, int]]:
    return [(_stream(*fields), start) for *fields, start in handoff["panes"]]


def _stream(keyset: str, fields: list, values: list, source_partition: int | None) -> Stream:
    return SeriesKey(keyset, tuple(fields), tuple(values)), source_partition
