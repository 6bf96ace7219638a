"""StreamProcessor without Faust, on a real redis-server and chdb: what the worker does with a
take and a tick — dead letters sent with their reason at once, good messages acked only once
the windows they fed are in Redis and ClickHouse."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from inferwatch.processors.pipeline import RawMessage
from inferwatch.processors.stream_processor import StreamProcessor
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec
from inferwatch.settings import Settings
from inferwatch.sinks.clickhouse.clickhouse_thread import ClickHouseThread
from inferwatch.sinks.redis.live_state import LiveStateWriter, read_windows
from redis_server import RedisServer
from waiting import until

# A minute boundary a few minutes ago: Redis's window index keeps the last hour only.
T0 = int(time.time() // 60 * 60_000) - 5 * 60_000
CODEC = EventCodec(local_schema_ids())


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def test_a_take_is_dead_lettered_at_once_and_acked_after_its_windows_are_written(tmp_path, redis_server):
    settings = Settings(state_dir=tmp_path, kafka_partitions=1, longer_windows=[], allowed_lateness_seconds=0,
                        decode_processes=0, clickhouse_dsn=f"chdb://{tmp_path / 'clickhouse'}")
    clickhouse = ClickHouseThread(settings)
    acked, sent = [], []

    async def ack(tokens):
        acked.extend(tokens)

    async def send_dead_letter(key, value, headers):
        sent.append((key, value, dict(headers)))

    async def send_drift(key, value):  # no profile, no learning (too few panes): never called
        raise AssertionError("a drift detection from one minute of traffic")

    def message(offset, value, timestamp_ms):
        return RawMessage("llm.inference.v1", 0, offset, b"key", value, timestamp_ms, ack_token=f"offset {offset}")

    first_minute = TrafficModel(seed=1).events(np.arange(300, dtype=np.int64) * 200 + T0)
    later = TrafficModel(seed=2).events(np.array([T0 + 61_000]))  # event time past the first minute
    take = [message(0, CODEC.encode_batch(first_minute), T0 + 60_000), message(1, b"junk", T0 + 60_000)]
    # A take's messages of one partition are acked together, once all their windows closed: the
    # next minute's event comes in a take of its own.
    next_take = [message(2, CODEC.encode_batch(later), T0 + 61_000)]

    def first_minute_in_clickhouse():
        rows = clickhouse.submit(clickhouse.tables.query, "SELECT sum(events) FROM window_rollups "
                                 "WHERE keyset = 'model' AND window_seconds = 60").result().rows
        return rows[0][0] or 0

    async def scenario():
        processor = StreamProcessor(settings, CODEC, LiveStateWriter(redis_server.url, 3600, 7200), clickhouse,
                                    ack, send_dead_letter, send_drift)
        writer = asyncio.create_task(processor.write_clickhouse())
        try:
            await processor.on_events(take)
            # The dead letter went out with the take, its reason and source in its headers.
            assert [(key, value) for key, value, _ in sent] == [(b"key", b"junk")]
            assert b"not Confluent-framed" in sent[0][2]["inferwatch.reason"]
            await processor.on_events(next_take)
            assert acked == []  # nothing before the live update
            await processor.tick()
            await until("the first message acked", lambda: "offset 0" in acked)
            # Acked only after its windows were in Redis and ClickHouse.
            assert first_minute_in_clickhouse() == len(first_minute)
            closed = [w for w in read_windows(processor.live_state.client)
                      if w["keyset"] == "model" and w["state"] == "closed"]
            assert sum(int(w["events"]) for w in closed) == len(first_minute)
            # The dead letter is acked with it; the message feeding the open minute is not.
            assert sorted(acked) == ["offset 0", "offset 1"]
        finally:
            writer.cancel()
            processor.close()

    try:
        asyncio.run(scenario())
    finally:
        clickhouse.close()
