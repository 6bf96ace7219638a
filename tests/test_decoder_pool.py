"""DecoderPool with real processes: a decoder that dies is replaced, and nothing is lost."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal

import numpy as np

from inferwatch.processors.decoding import DecoderPool
from inferwatch.processors.pipeline import RawMessage, decode_items
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec
from inferwatch.settings import Settings

T0 = 1_700_000_040_000


def test_a_killed_decoder_process_is_replaced_and_the_takes_are_decoded():
    """Before: a decoder killed (e.g. by the kernel, for memory) broke the pool for good, and the
    next take raised on submit in the events agent."""
    settings = Settings()
    codec = EventCodec(local_schema_ids())
    events = TrafficModel(seed=3).events(np.arange(300, dtype=np.int64) + T0)
    items = decode_items([RawMessage("events", 0, 0, b"k", codec.encode_batch(events), T0 + 1_000)])

    async def scenario():
        pool = DecoderPool(1, (codec.ids, settings.window_keys, settings.event_limits))
        try:
            assert (await pool.result(items, pool.submit(items))).events == 300
            for _ in range(2):  # killed while idle, then while a take waits for it
                (decoder,) = multiprocessing.active_children()
                started = pool.submit(items) if _ else None
                os.kill(decoder.pid, signal.SIGKILL)
                decoder.join()
                decoded = await pool.result(items, started or pool.submit(items))
                assert (decoded.events, decoded.errors, decoded.invalid) == (300, {}, [])
        finally:
            pool.shutdown()

    asyncio.run(scenario())
