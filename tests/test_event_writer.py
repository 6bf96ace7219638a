"""The ClickHouse event writer's batching, retry and backpressure, with a stand-in insert."""

import asyncio

import pytest

from inferwatch.sinks.clickhouse.event_writer import BufferedEventWriter


def events(n, start=0):
    return [{"event_id": f"e{i}"} for i in range(start, start + n)]


class FlakyInsert:
    def __init__(self, failures):
        self.failures = failures
        self.batches = []

    async def __call__(self, columns):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("ClickHouse is away")
        self.batches.append(columns)


@pytest.fixture(autouse=True)
def ids_as_columns(monkeypatch):
    """Rows as their event ids: what was inserted, in which order, is then plain to compare."""
    monkeypatch.setattr("inferwatch.sinks.clickhouse.event_writer.event_columns",
                        lambda evs: [e["event_id"] for e in evs])


def writer(insert, written, **kwargs):
    options = {"batch_rows": 10, "batch_seconds": 3600, "max_backlog_rows": 100, **kwargs}
    return BufferedEventWriter(insert, written.extend, **options)


def test_batches_by_size_and_reports_written_messages():
    insert, written = FlakyInsert(0), []
    w = writer(insert, written)

    async def run():
        await w.add(events(6), ["m1"])
        await w.write_due()
        assert insert.batches == [] and written == []  # 6 < 10 rows, not old enough
        await w.add(events(6, 6), ["m2"])
        await w.write_due()

    asyncio.run(run())
    assert insert.batches == [[f"e{i}" for i in range(12)]]
    assert written == ["m1", "m2"] and w.stats.rows_written == 12 and w.stats.backlog_rows == 0


def test_failed_inserts_keep_rows_in_order_and_retry():
    insert, written = FlakyInsert(2), []
    w = writer(insert, written)

    async def run():
        await w.add(events(10), ["m1"])
        await w.write_due()
        assert w.stats.failed_inserts == 1 and w.stats.backlog_rows == 10 and "away" in w.stats.last_error
        await w.add(events(5, 10), ["m2"])
        for _ in range(2):
            w._retry_at = 0  # skip the backoff wait
            await w.write_due()

    asyncio.run(run())
    assert insert.batches == [[f"e{i}" for i in range(15)]]
    assert written == ["m1", "m2"]


def test_backlog_cap_makes_the_agent_wait_until_written():
    insert, written = FlakyInsert(0), []
    w = writer(insert, written, max_backlog_rows=20)

    async def run():
        await w.add(events(20), ["m1"])
        blocked = asyncio.create_task(w.add(events(1), ["m2"]))
        await asyncio.sleep(0)
        assert not blocked.done()
        await w.write_due()
        await asyncio.wait_for(blocked, 1)

    asyncio.run(run())
    assert written == ["m1"]
