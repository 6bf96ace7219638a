"""The worker's ClickHouse thread, and the embedded engine's threads, run at clickhouse_thread_nice."""

import multiprocessing
import os
import sys
import threading
from pathlib import Path

import pytest

from inferwatch.settings import Settings
from inferwatch.sinks.clickhouse.clickhouse_thread import ClickHouseThread

pytestmark = pytest.mark.integration  # embedded chdb (ClickHouse) engine: not in `make unit`


def thread_nice_values() -> dict[str, set[int]]:
    """This process's threads: name -> nice values (field 19 of /proc/<pid>/task/<tid>/stat)."""
    values: dict[str, set[int]] = {}
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        stat = (task / "stat").read_text()
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        values.setdefault(name, set()).add(int(stat[stat.rindex(")") + 2:].split()[16]))
    return values


def nice_values_in_a_fresh_process(state_dir: str) -> tuple[int, dict[str, set[int]], int]:
    """As in a worker: the process's first ClickHouse connection is opened by the ClickHouse thread
    (chdb's thread pools are process-wide, started on first use). Run in a process of its own."""
    clickhouse = ClickHouseThread(Settings(state_dir=Path(state_dir), kafka_bootstrap="unused:1",
                                           redis_url="redis://unused", clickhouse_thread_nice=7))
    try:
        own = clickhouse.submit(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id())).result()
        clickhouse.submit(clickhouse.tables.query, "SELECT count() FROM numbers(10000000)").result()
        return own, thread_nice_values(), os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    finally:
        clickhouse.close()


@pytest.mark.skipif(sys.platform != "linux", reason="a thread's own nice value is Linux's")
def test_clickhouse_work_runs_below_normal_priority(tmp_path):
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        own, engine, caller = pool.apply(nice_values_in_a_fresh_process, (str(tmp_path),))
    assert own == 7
    # chdb's merge and query pools were started from the ClickHouse thread: they inherit it.
    assert engine["MergeMutate"] == {7}
    assert 7 in engine.get("ThreadPool", set()) | engine.get("QueryPool", set())
    assert caller == 0  # the thread that made the ClickHouseThread keeps its priority
