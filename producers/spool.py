"""A bounded, ordered, on-disk queue of Kafka messages for when the broker cannot take them.

Records are appended to numbered segment files (`<n>.spool`, about `segment_bytes` each) as
``u32 value length | u32 events | u16 key length | key | value``. The sender takes the oldest
segment whole (`oldest()`), which seals it so new records go to a new segment, and deletes it
(`remove()`) only once every message in it is delivered: a crash re-sends rather than loses.
When the spool would exceed `max_bytes`, the oldest segment is dropped and its events counted in
`dropped_events` (the documented policy: keep the newest data, never block the caller).
One publisher per folder: the spool is not shared between processes.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

_HEADER = struct.Struct(">IIH")
SUFFIX = ".spool"


@dataclass(frozen=True)
class SpooledMessage:
    key: bytes | None
    value: bytes
    events: int


class Spool:
    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int = 8 * 1024 * 1024):
        if max_bytes < segment_bytes:
            raise ValueError(f"spool max_bytes ({max_bytes}) must be at least one segment ({segment_bytes})")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.dropped_events = 0
        self._sealed: set[Path] = set()

    def _segments(self) -> list[Path]:
        return sorted(self.directory.glob(f"*{SUFFIX}"), key=lambda p: int(p.stem))

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self._segments())

    def is_empty(self) -> bool:
        return not self._segments()

    def append(self, messages: list[SpooledMessage]) -> None:
        """Raises OSError (e.g. a full disk) with nothing of `messages` left in the spool."""
        segments = self._segments()
        tail = segments[-1] if segments else None
        size = tail.stat().st_size if tail else 0
        if tail is None or tail in self._sealed or size >= self.segment_bytes:
            tail, size = self.directory / f"{int(tail.stem) + 1 if tail else 0}{SUFFIX}", 0
        try:
            with tail.open("ab") as out:
                out.write(_encode(messages))
                out.flush()
                os.fsync(out.fileno())  # spooled means it survives a crash of this process
        except OSError:
            # Cut off what part of the records was written: the caller counts them as dropped,
            # and records appended after a torn one would be misread.
            if size:
                os.truncate(tail, size)
            else:
                tail.unlink(missing_ok=True)
            raise
        self._enforce_limit()

    def _enforce_limit(self) -> None:
        segments = self._segments()
        while len(segments) > 1 and sum(p.stat().st_size for p in segments) > self.max_bytes:
            oldest = segments.pop(0)
            self.dropped_events += sum(m.events for m in _read_segment(oldest))
            self.remove(oldest)

    def oldest(self) -> tuple[Path, list[SpooledMessage]] | None:
        """The oldest segment and its messages, in order; sealed against further appends."""
        segments = self._segments()
        if not segments:
            return None
        self._sealed.add(segments[0])
        return segments[0], list(_read_segment(segments[0]))

    def remove(self, segment: Path) -> None:
        """Forget a segment whose messages were all delivered (or dropped)."""
        segment.unlink(missing_ok=True)
        self._sealed.discard(segment)

    def replace(self, segment: Path, messages: list[SpooledMessage]) -> None:
        """Keep only `messages` (the undelivered part) in a segment, at its place in the order."""
        if not messages:
            self.remove(segment)
            return
        if not segment.exists():
            return  # dropped by the size limit meanwhile; its events are counted as dropped
        tmp = segment.with_suffix(".tmp")
        try:
            with tmp.open("wb") as out:
                out.write(_encode(messages))
                out.flush()
                os.fsync(out.fileno())
        except OSError:
            tmp.unlink(missing_ok=True)  # the segment is unchanged; a full disk needs the space back
            raise
        tmp.replace(segment)


def _encode(messages: list[SpooledMessage]) -> bytes:
    parts = []
    for message in messages:
        key = message.key or b""
        parts.append(_HEADER.pack(len(message.value), message.events, len(key)) + key + message.value)
    return b"".join(parts)


def _read_segment(path: Path):
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    offset = 0
    while offset + _HEADER.size <= len(data):
        value_len, events, key_len = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        end = start + key_len + value_len
        if end > len(data):
            break  # a record torn by a crash mid-write: its events were never acknowledged
        yield SpooledMessage(data[start:start + key_len] or None, data[start + key_len:end], events)
        offset = end
