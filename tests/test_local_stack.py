"""The local stack: real broker and redis-server, started and stopped by PID, on loopback only."""

import json
import os
import subprocess

import pytest
import redis
from confluent_kafka.admin import AdminClient

from inferwatch.deploy import local_stack
from inferwatch.processes import read_process, register_process
from inferwatch.settings import Settings

pytestmark = pytest.mark.integration

LOOPBACK_V4 = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
LOOPBACK_V6_MAPPED = "0000000000000000FFFF0000" + LOOPBACK_V4  # ::ffff:127.0.0.1 (Java's sockets)


def test_topics_exist_with_configured_partitions(stack):
    metadata = AdminClient({"bootstrap.servers": stack.resolved_kafka_bootstrap}).list_topics(timeout=10)
    for topic in (stack.events_topic, stack.dlq_topic):
        assert len(metadata.topics[topic].partitions) == stack.kafka_partitions


def test_redis_answers_on_loopback(stack):
    assert stack.resolved_redis_url.startswith("redis://127.0.0.1:")
    assert redis.Redis.from_url(stack.resolved_redis_url).ping()


def _listening_addresses(pid: int) -> set[str]:
    """Local addresses (hex ip:port, as in /proc/net/tcp*) of the TCP sockets a process listens on."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addresses.add(fields[1])
    return addresses


def test_servers_listen_on_loopback_only(stack):
    rows = {row["component"]: row for row in local_stack.status(stack)}
    kafka, redis_ = _listening_addresses(rows["kafka"]["pid"]), _listening_addresses(rows["redis"]["pid"])
    assert len(kafka) == 2 and len(redis_) == 1  # broker + controller; redis
    for address in kafka | redis_:
        assert address.split(":")[0] in (LOOPBACK_V4, LOOPBACK_V6_MAPPED), address
    ports = json.loads(stack.stack_file.read_text())
    assert {a.split(":")[1] for a in kafka} == {f"{ports['kafka_port']:04X}", f"{ports['controller_port']:04X}"}
    assert {a.split(":")[1] for a in redis_} == {f"{ports['redis_port']:04X}"}
    assert redis.Redis.from_url(stack.resolved_redis_url).config_get("bind")["bind"] == "127.0.0.1"


def test_status_reports_both_running(stack):
    rows = {row["component"]: row for row in local_stack.status(stack)}
    for name in ("kafka", "redis"):
        assert rows[name]["running"] and rows[name]["pid"] and rows[name]["rss_mib"] > 0
        assert rows[name]["address"].startswith("127.0.0.1:")
    table = local_stack.format_status(list(rows.values()))
    assert "kafka" in table and "redis" in table and str(rows["kafka"]["pid"]) in table


def _pids_and_addresses(settings):
    return {(r["component"], r["pid"], r["address"]) for r in local_stack.status(settings) if r["running"]}


def test_up_is_idempotent(stack):
    before = _pids_and_addresses(stack)
    endpoints = local_stack.up(stack, progress=lambda _: None)
    assert _pids_and_addresses(stack) == before
    assert endpoints["kafka_bootstrap"] == stack.resolved_kafka_bootstrap
    assert endpoints["redis_url"] == stack.resolved_redis_url


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "300"])


def _alive(pid):
    """Running, not merely a zombie waiting for its parent (this test process) to reap it."""
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(") ", 1)[1][0]
    except OSError:
        return False
    return state != "Z"


def test_down_stops_only_what_up_started(tmp_path):
    # Its own stack: the session's must keep running for the other tests.
    settings = Settings(state_dir=tmp_path / "own")
    unrelated, foreign, reused = _sleeper(), _sleeper(), _sleeper()
    try:
        # Records pointing at processes we did not start: one whose command line is not ours, and
        # one whose PID now belongs to another process (same command line, other start time).
        register_process(settings, "foreign", foreign.pid, marker="not-its-command-line")
        register_process(settings, "reused", reused.pid, marker="sleep 300")
        assert read_process(settings, "reused") is not None  # a true record is recognised
        record = settings.run_dir / "reused.json"
        record.write_text(json.dumps({**json.loads(record.read_text()), "start_time": 1}))
        assert read_process(settings, "reused") is None
        local_stack.up(settings, progress=lambda _: None)
        pids = {r["component"]: r["pid"] for r in local_stack.status(settings) if r["running"]}
        assert pids.keys() == {"kafka", "redis"}

        local_stack.down(settings, progress=lambda _: None)
        assert all(_alive(p.pid) for p in (unrelated, foreign, reused))
        assert not any(_alive(pid) for pid in pids.values())
        assert all(not r["running"] for r in local_stack.status(settings))
        assert not settings.stack_file.exists() and not list(settings.run_dir.glob("*.json"))
        local_stack.down(settings, progress=lambda _: None)  # nothing running: fine
    finally:
        for process in (unrelated, foreign, reused):
            process.kill()
            process.wait()
