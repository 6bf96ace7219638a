"""The local stack: real broker and redis-server, started and stopped by PID, on loopback only."""

import subprocess
import sys

import pytest
import redis
from confluent_kafka.admin import AdminClient

from inferwatch.deploy import local_stack
from inferwatch.settings import Settings

pytestmark = pytest.mark.integration


def test_topics_exist_with_configured_partitions(stack):
    metadata = AdminClient({"bootstrap.servers": stack.resolved_kafka_bootstrap}).list_topics(timeout=10)
    for topic in (stack.events_topic, stack.dlq_topic):
        assert len(metadata.topics[topic].partitions) == stack.kafka_partitions


def test_redis_answers_on_loopback(stack):
    assert stack.resolved_redis_url.startswith("redis://127.0.0.1:")
    assert redis.Redis.from_url(stack.resolved_redis_url).ping()


def test_servers_listen_on_loopback_only(stack):
    config = (stack.state_dir / "kafka" / "server.properties").read_text()
    listeners = next(line for line in config.splitlines() if line.startswith("listeners="))
    assert all(l.split("://")[1].startswith("127.0.0.1:") for l in listeners.split("=", 1)[1].split(","))
    assert redis.Redis.from_url(stack.resolved_redis_url).config_get("bind")["bind"] == "127.0.0.1"


def test_status_reports_both_running(stack):
    rows = {row["component"]: row for row in local_stack.status(stack)}
    assert rows["kafka"]["running"] and rows["redis"]["running"]
    assert rows["kafka"]["pid"] and rows["kafka"]["rss_mib"] > 0
    assert "kafka" in local_stack.format_status(list(rows.values()))


def _pids_and_addresses(settings):
    return {(r["component"], r["pid"], r["address"]) for r in local_stack.status(settings) if r["running"]}


def test_up_is_idempotent(stack):
    before = _pids_and_addresses(stack)
    endpoints = local_stack.up(stack, progress=lambda _: None)
    assert _pids_and_addresses(stack) == before
    assert endpoints["kafka_bootstrap"] == stack.resolved_kafka_bootstrap


def test_down_stops_only_what_up_started(tmp_path):
    settings = Settings(state_dir=tmp_path / "own")
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    try:
        # A record pointing at a process we did not start (e.g. its PID was reused) is ignored.
        local_stack.register_process(settings, "stale", bystander.pid, marker="not-its-command-line")
        local_stack.up(settings, progress=lambda _: None)
        pids = {r["component"]: r["pid"] for r in local_stack.status(settings) if r["running"]}
        assert pids.keys() == {"kafka", "redis"}
        local_stack.down(settings, progress=lambda _: None)
        assert _alive(bystander.pid)
        assert not any(_alive(pid) for pid in pids.values())
        assert all(not r["running"] for r in local_stack.status(settings))
    finally:
        bystander.kill()


def _alive(pid):
    """Running, not merely a zombie waiting for its parent (this test process) to reap it."""
    try:
        state = open(f"/proc/{pid}/stat").read().split(") ", 1)[1][0]
    except OSError:
        return False
    return state != "Z"
