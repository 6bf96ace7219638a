"""Kafka message bodies -> valid events as numpy columns per partition, and what was refused: the
per-event work, runnable in other processes.

Avro decoding is the worker's per-event cost (fastavro: 12-18 µs an event, under the GIL). The
events agent therefore hands each take of messages to a pool of `decode_processes` processes
(processors/app.py) and applies the decoded columns in order on its own thread, so decoding
uses the machine's other cores. `decode_messages` is a pure function of the message bytes and
timestamps; the pool's processes build their codec and rules once (`init_decoder`).

Each event is checked against the one definition of a valid event (schemas/validation.py): an
invalid event is refused on its own, re-framed as a single-event message for the dead-letter
topic, and the valid events of its message go on.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

import numpy as np

from inferwatch.processors.event_batch import EventBatch
from inferwatch.processors.windows.keys import KeySet, parse_keysets
from inferwatch.schemas.registry import SchemaIds
from inferwatch.schemas.validation import EventLimits, Rule, event_rules, invalid_events
from inferwatch.schemas.wire import EventCodec, WireFormatError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InvalidEvent:
    message_index: int  # into the decoded items
    event_index: int  # within its message
    reason: str
    payload: bytes  # the event alone, as a single-event message; b"" if even that cannot be encoded


@dataclass(frozen=True)
class DecodedMessages:
    batches: dict[int, EventBatch]  # partition -> its valid events, in message order
    errors: dict[int, str]  # index of a message that did not decode -> the dead-letter reason
    invalid: list[InvalidEvent]  # events of decoded messages that broke a rule
    events: int  # valid events


@dataclass(frozen=True)
class Decoder:
    codec: EventCodec
    keysets: list[KeySet]
    rules: list[Rule]
    max_events_per_message: int

    @classmethod
    def build(cls, ids: SchemaIds, window_keys: list[str], limits: EventLimits) -> Decoder:
        return cls(EventCodec(ids), parse_keysets(window_keys), event_rules(limits), limits.max_events_per_message)


def decode_messages(decoder: Decoder, items: list[tuple[int, bytes | None, int]]) -> DecodedMessages:
    """(partition, message value, Kafka timestamp ms) triples -> the valid events' columns per
    partition, and what failed: whole messages, single events."""
    # partition -> its events, and per message: (its index in items, how many events it holds)
    by_partition: dict[int, tuple[list[dict], list[tuple[int, int]]]] = {}
    errors = {}
    for index, (partition, value, _) in enumerate(items):
        try:
            events = decoder.codec.decode(value, decoder.max_events_per_message)
        except WireFormatError as exc:
            errors[index] = str(exc)
            continue
        decoded, messages = by_partition.setdefault(partition, ([], []))
        decoded.extend(events)
        messages.append((index, len(events)))
    batches, invalid = {}, []
    for partition, (events, messages) in by_partition.items():
        indexes, counts = np.array(messages, dtype=np.int64).reshape(-1, 2).T
        ref_ms = np.repeat([items[i][2] for i in indexes.tolist()], counts)  # per event: its message's timestamp
        reasons = invalid_events(decoder.rules, events, ref_ms)
        if reasons:
            starts = np.cumsum(counts) - counts  # each message's first position
            for position, reason in reasons.items():
                message = int(np.searchsorted(starts, position, side="right")) - 1
                invalid.append(InvalidEvent(int(indexes[message]), position - int(starts[message]), reason,
                                            _single_event(decoder.codec, events[position])))
            events = [e for position, e in enumerate(events) if position not in reasons]
        if events:
            batches[partition] = EventBatch.from_events(events, decoder.keysets)
    invalid.sort(key=lambda i: (i.message_index, i.event_index))
    return DecodedMessages(batches, errors, invalid, sum(len(b) for b in batches.values()))


def _single_event(codec: EventCodec, event: dict) -> bytes:
    try:
        return codec.encode_event(event)
    except Exception:  # noqa: BLE001 -- fastavro's errors vary; the reason and source still say which event
        return b""


_decoder: Decoder | None = None


def init_decoder(ids: SchemaIds, window_keys: list[str], limits: EventLimits) -> None:
    """Pool initializer: what this process decodes with."""
    global _decoder
    _decoder = Decoder.build(ids, window_keys, limits)


def decode_in_pool(items: list[tuple[int, bytes | None, int]]) -> DecodedMessages:
    return decode_messages(_decoder, items)


class DecoderPool:
    """`processes` processes running decode_in_pool. A process that dies (killed by the kernel
    for memory, say) breaks a ProcessPoolExecutor for good, so the pool is replaced, and the
    takes it was decoding are decoded again in the new one."""

    def __init__(self, processes: int, initargs: tuple):
        self._processes, self._initargs = processes, initargs
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self._processes, initializer=init_decoder, initargs=self._initargs,
                                   mp_context=multiprocessing.get_context("spawn"))  # no fork of a threaded process

    def submit(self, items: list[tuple[int, bytes | None, int]]) -> tuple[ProcessPoolExecutor, asyncio.Future]:
        """Start decoding a take; hand the result to `result`."""
        executor = self._executor
        try:
            return executor, asyncio.get_running_loop().run_in_executor(executor, decode_in_pool, items)
        except BrokenProcessPool:  # broken since the last take: not by this one
            self._replace(executor)
            return self.submit(items)

    async def result(self, items: list[tuple[int, bytes | None, int]],
                     started: tuple[ProcessPoolExecutor, asyncio.Future]) -> DecodedMessages:
        """The decoded take; raises BrokenProcessPool if a fresh pool died on it too (the take
        itself kills decoders)."""
        executor, pending = started
        try:
            return await pending
        except BrokenProcessPool:
            log.error("a decoder process died: replacing the decoder pool and decoding the take again")
            self._replace(executor)
            return await asyncio.get_running_loop().run_in_executor(self._executor, decode_in_pool, items)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        if self._executor is broken:  # the takes queued behind it find it replaced already
            broken.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
