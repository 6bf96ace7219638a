"""Records of the dead-letter topic: what was refused, why, and where it came from.

The value is the refused message (or, for one invalid event, that event alone as a single-event
message); headers: ``inferwatch.reason``, ``inferwatch.source`` (``topic/partition/offset``),
``inferwatch.event_index`` for one event of a batch message, and ``inferwatch.size`` when the
value was too large to copy: then the value is empty and the source offset finds the original
while the topic retains it.
"""

from __future__ import annotations

# Room under the broker's message limit for the headers and the record's own overhead.
OVERHEAD_BYTES = 64 * 1024


def dead_letter_record(value: bytes, reason: str, source: tuple[str, int, int], max_message_bytes: int,
                       event_index: int | None = None) -> tuple[bytes, list[tuple[str, bytes]], str]:
    """(value, headers, reason) of the dead letter; the reason says when the value is not copied."""
    topic, partition, offset = source
    headers = [("inferwatch.source", f"{topic}/{partition}/{offset}".encode())]
    if event_index is not None:
        headers.append(("inferwatch.event_index", str(event_index).encode()))
    if len(value) > max_message_bytes - OVERHEAD_BYTES:
        headers.append(("inferwatch.size", str(len(value)).encode()))
        reason, value = f"{reason} ({len(value)} bytes, not copied)", b""
    return value, [("inferwatch.reason", reason.encode()), *headers], reason
