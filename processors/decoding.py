"""Kafka message bodies -> numpy columns per partition: the per-event work, runnable in other processes.

Avro decoding is the worker's per-event cost (fastavro: 12-18 µs an event, under the GIL). The
events agent therefore hands each take of messages to a pool of `decode_processes` processes
(processors/app.py) and applies the decoded columns in order on its own thread, so decoding
uses the machine's other cores. `decode_messages` is a pure function of the message bytes; the
pool's processes build their codec once (`init_decoder`).
"""

from __future__ import annotations

from dataclasses import dataclass

from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.windows.keys import KeySet, parse_keysets
from inferwatch.schemas.registry import SchemaIds
from inferwatch.schemas.wire import EventCodec, WireFormatError


@dataclass(frozen=True)
class DecodedMessages:
    batches: dict[int, EventBatch]  # partition -> its events, in message order
    errors: dict[int, str]  # index of a message that did not decode -> the dead-letter reason
    events: int


def decode_messages(codec: EventCodec, keysets: list[KeySet], items: list[tuple[int, bytes | None]]) -> DecodedMessages:
    """(partition, message value) pairs -> the events' columns per partition, and what failed."""
    by_partition: dict[int, list[dict]] = {}
    errors = {}
    for index, (partition, value) in enumerate(items):
        try:
            by_partition.setdefault(partition, []).extend(codec.decode(value))
        except WireFormatError as exc:
            errors[index] = str(exc)
    batches = {p: EventBatch.from_events(events, keysets) for p, events in by_partition.items() if events}
    return DecodedMessages(batches, errors, sum(len(b) for b in batches.values()))


_decoder: tuple[EventCodec, list[KeySet]] | None = None


def init_decoder(ids: SchemaIds, window_keys: list[str]) -> None:
    """Pool initializer: the codec and key sets this process decodes with."""
    global _decoder
    _decoder = (EventCodec(ids), parse_keysets(window_keys))


def decode_in_pool(items: list[tuple[int, bytes | None]]) -> DecodedMessages:
    codec, keysets = _decoder
    return decode_messages(codec, keysets, items)
