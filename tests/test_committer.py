"""UpdateCommitter without Faust, on a real redis-server and chdb: Redis, then ClickHouse, then
acks; neither sink holding up the other, nothing lost while one is away."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import redis

from inferwatch.processors.committer import UpdateCommitter
from inferwatch.processors.pipeline import WindowPipeline, RawMessage
from inferwatch.producers.traffic_model import TrafficModel
from inferwatch.schemas.registry import local_schema_ids
from inferwatch.schemas.wire import EventCodec
from inferwatch.settings import Settings
from inferwatch.sinks.clickhouse.clickhouse_thread import ClickHouseThread
from inferwatch.sinks.clickhouse.window_sink import ClickHouseWindows
from inferwatch.sinks.redis.live_state import COUNTERS, LiveStateWriter, window_key
from redis_server import RedisServer
from waiting import until

T0 = 1_700_000_040_000
CODEC = EventCodec(local_schema_ids())


class ClickHouseAway:
    """The real ClickHouse thread, every call failing while `away` is set, as if it were down."""

    def __init__(self, clickhouse):
        self.away = False
        self.real = clickhouse
        self.tables = clickhouse.tables

    async def call(self, fn, *args):
        if self.away:
            raise ConnectionError("ClickHouse is away")
        return await self.real.call(fn, *args)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path):
    return Settings(state_dir=tmp_path, kafka_partitions=1, longer_windows=[], allowed_lateness_seconds=0,
                    partition_idle_seconds=1, clickhouse_dsn=f"chdb://{tmp_path / 'clickhouse'}")


@pytest.fixture
def clickhouse(settings):
    thread = ClickHouseThread(settings)
    yield ClickHouseAway(thread)
    thread.close()


class Harness:
    """A pipeline fed one minute of events per `minute()`, and a committer that records its acks."""

    def __init__(self, settings, redis_url, clickhouse, max_pending_rows=1_000):
        self.pipeline = WindowPipeline(settings, CODEC)
        self.live_state = LiveStateWriter(redis_url, 3600, 7200)
        self.acked: list[object] = []
        self.clickhouse = clickhouse
        self.committer = UpdateCommitter(self.live_state, [ClickHouseWindows(clickhouse)], clickhouse,
                                         self.pipeline.composite, self._ack, max_pending_rows)
        self.minutes = 0
        self.sent = 0

    async def _ack(self, tokens):
        self.acked.extend(tokens)

    def minute(self):
        """A minute of events (closing the previous minute's windows); the update, and its token."""
        start = T0 + self.minutes * 60_000
        events = TrafficModel(seed=self.minutes).events(np.arange(200, dtype=np.int64) * 250 + start)
        token = object()
        self.pipeline.process([RawMessage("events", 0, self.minutes, b"k", CODEC.encode_batch(events),
                                          start + 60_000, ack_token=token)], wall_ms=self.minutes)
        self.minutes += 1
        self.sent += len(events)
        return self.pipeline.live_update(wall_ms=self.minutes), token

    def rollup_events(self):
        rows = self.clickhouse.real.submit(self.clickhouse.tables.query,
                                           "SELECT sum(events) FROM window_rollups WHERE keyset = 'model'").result().rows
        return rows[0][0]


def test_live_windows_reach_redis_while_clickhouse_is_away_and_rollups_follow_it_back(settings, redis_server, clickhouse):
    """Before: the live update awaited the rollups' insert, so a slow or absent ClickHouse froze
    Redis and alerts."""
    async def scenario():
        harness = Harness(settings, redis_server.url, clickhouse)
        task = asyncio.create_task(harness.committer.run_clickhouse())
        clickhouse.away = True
        first, first_token = harness.minute()
        assert await harness.committer.write(first)
        second, second_token = harness.minute()  # closes the first minute's windows
        assert await harness.committer.write(second)
        closed = [w for w in second.closed_windows if w["keyset"] == "model"]
        assert closed
        client = redis.Redis.from_url(redis_server.url, decode_responses=True)
        assert all(client.hget(window_key(w), "state") == "closed" for w in closed)
        assert harness.acked == [] and harness.committer.pending["clickhouse_rows"] > 0

        clickhouse.away = False
        await until("the acks", lambda: harness.acked == [first_token])
        assert harness.rollup_events() == 200  # the first minute, exactly once
        assert client.get(f"{window_key(closed[0])}:final") == "written"
        task.cancel()

    asyncio.run(scenario())


def test_updates_wait_folded_while_redis_is_down_and_all_arrive_when_it_returns(settings, redis_server, clickhouse):
    """Before: Redis calls ran on the event loop, with no timeout."""
    async def scenario():
        harness = Harness(settings, redis_server.url, clickhouse)
        task = asyncio.create_task(harness.committer.run_clickhouse())
        redis_server.stop()
        for _ in range(3):
            update, _ = harness.minute()
            assert not await harness.committer.write(update)
        assert harness.committer.pending == {"redis_updates": 1, "clickhouse_rows": 0}
        redis_server.start()
        update, _ = harness.minute()
        assert await harness.committer.write(update)
        client = redis.Redis.from_url(redis_server.url)
        assert int(client.hget(COUNTERS, "events")) == harness.sent == 800
        await until("three minutes of rollups", lambda: len(harness.acked) == 3)
        assert harness.rollup_events() == 600
        task.cancel()

    asyncio.run(scenario())


def test_past_its_bound_the_clickhouse_queue_drops_the_oldest_rows_counts_them_and_commits(settings, redis_server, clickhouse):
    async def scenario():
        harness = Harness(settings, redis_server.url, clickhouse, max_pending_rows=1)
        clickhouse.away = True
        updates, tokens = [], []
        for _ in range(4):
            update, token = harness.minute()
            assert await harness.committer.write(update)
            updates.append(update)
            tokens.append(token)
        # Every update with closed windows is over the bound alone: all but the head are dropped.
        assert harness.acked == tokens[:3]  # their messages (each closing the minute before) went on
        counted = int(redis.Redis.from_url(redis_server.url).hget(COUNTERS, "rollups_dropped") or 0)
        assert counted + harness.committer.rollups_dropped == sum(len(u.closed_windows) + len(u.alerts)
                                                                  for u in updates[1:])
        clickhouse.away = False
        task = asyncio.create_task(harness.committer.run_clickhouse())
        await until("the head", lambda: harness.committer.pending["clickhouse_rows"] == 0)
        assert harness.rollup_events() == 0  # the head: the first minute, nothing closed yet
        task.cancel()

    asyncio.run(scenario())


def test_messages_wait_for_a_window_another_worker_holds_until_it_is_written_or_taken_over(settings, redis_server, clickhouse):
    """Before: a window claimed by a worker that was then killed was skipped by the next one, its
    messages committed, and the window never reached window_rollups."""
    async def scenario():
        harness = Harness(settings, redis_server.url, clickhouse)
        task = asyncio.create_task(harness.committer.run_clickhouse())
        holder = LiveStateWriter(redis_server.url, 3600, 7200, heartbeat_seconds=1.0)
        holder.worker_id = "killed:1"
        first, first_token = harness.minute()
        assert await harness.committer.write(first)
        second, second_token = harness.minute()  # closes the first minute: frees its message
        ours, _ = holder.claim_closed(second.closed_windows)  # closed first by a worker about to die
        assert ours == second.closed_windows
        assert await harness.committer.write(second)
        await until("the queue written", lambda: harness.committer.pending["clickhouse_rows"] == 0)
        assert harness.acked == [] and harness.rollup_events() == 0  # held: its messages wait

        heartbeat = f"iw:worker:{holder.worker_id}"
        await until("the holder's heartbeat to expire", lambda: not holder.client.exists(heartbeat))
        third, _ = harness.minute()
        assert await harness.committer.write(third)  # takes the dead worker's windows over
        await until("the acks", lambda: harness.acked == [first_token, second_token])
        assert harness.rollup_events() == 400  # the first two minutes, each once
        task.cancel()

    asyncio.run(scenario())


class AnswersLate:
    """The real ClickHouse thread, whose answer to the first call is held until `release` is set:
    what the worker queues meanwhile arrives while an insert is in flight."""

    def __init__(self, clickhouse):
        self.real, self.tables = clickhouse.real, clickhouse.tables
        self.answered, self.release = 0, asyncio.Event()

    async def call(self, fn, *args):
        result = await self.real.call(fn, *args)
        self.answered += 1
        await self.release.wait()
        return result


def test_dead_letter_rows_queued_while_an_insert_is_in_flight_are_inserted_too(settings, redis_server, clickhouse):
    """Before: the rows queued during the insert were taken off the queue with the inserted ones."""
    def row(offset):
        return {"received_at": T0, "topic": "events", "partition": 0, "offset": offset, "reason": "r", "payload": b""}

    async def scenario():
        late = AnswersLate(clickhouse)
        committer = UpdateCommitter(LiveStateWriter(redis_server.url, 3600, 7200), [], late, None, None, 1_000)
        task = asyncio.create_task(committer.run_clickhouse())
        committer.queue_dead_letters([row(1)])
        await until("the first insert to be in", lambda: late.answered == 1)
        committer.queue_dead_letters([row(2)])
        late.release.set()
        await until("the queue empty", lambda: committer.pending["clickhouse_rows"] == 0)
        task.cancel()
        offsets = late.real.submit(late.tables.query, "SELECT offset FROM dead_letters ORDER BY offset").result().rows
        assert offsets == [(1,), (2,)]

    asyncio.run(scenario())
