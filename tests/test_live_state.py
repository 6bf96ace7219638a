"""LiveStateWriter against a real redis-server: wide snapshots, and every key it writes bounded."""

import time

import pytest
import redis

from redis_server import RedisServer
from waiting import wait_for
from inferwatch.sinks.redis.live_state import (
    ALERT_STREAM, COUNTERS, LATE_EVENTS, WINDOW_INDEX, LiveStateWriter, window_key,
)

WINDOW_TTL_S = 600


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def writer(redis_url):
    w = LiveStateWriter(redis_url, window_ttl_seconds=WINDOW_TTL_S, state_ttl_seconds=2 * WINDOW_TTL_S)
    w.client.flushdb()
    return w


def snapshot(**overrides):
    now_ms = int(time.time() * 1000)
    return {
        "keyset": "model", "series": "chat-api|llama-3.1-8b|v7",
        "service": "chat-api", "model": "llama-3.1-8b", "model_version": "v7",
        "window_start_ms": now_ms - now_ms % 60_000, "window_seconds": 60, "hop_seconds": 0,
        "source_partition": -1, "events": 5000, "errors": 5000, "latency_p99_ms": None,
        "error_types": {}, "quality_means": {}, "quality_counts": {},
        **overrides,
    }


def test_open_window_with_thousands_of_error_types_is_written_whole(writer):
    # Producer-controlled names: far more hash fields than one Lua unpack() can take.
    error_types = {f"err-{i}": 1 for i in range(5000)}
    window = snapshot(error_types=error_types)
    writer.write([window], [], [], {}, {})
    stored = {k.decode(): v.decode() for k, v in writer.client.hgetall(window_key(window)).items()}
    assert {k[len("error_type:"):]: int(v) for k, v in stored.items() if k.startswith("error_type:")} == error_types
    assert stored["state"] == "open" and stored["events"] == "5000" and "latency_p99_ms" not in stored
    assert 0 < writer.client.ttl(window_key(window)) <= WINDOW_TTL_S


def test_open_window_never_overwrites_a_closed_one(writer):
    closed = snapshot(events=7)
    writer.write([], [closed], [], {}, {})
    writer.write([snapshot(events=3)], [], [], {}, {})
    assert writer.client.hget(window_key(closed), "state") == b"closed"
    assert writer.client.hget(window_key(closed), "events") == b"7"


def test_every_key_written_expires_or_is_capped(writer):
    window = snapshot()
    pane = snapshot(window_start_ms=window["window_start_ms"] - 60_000, state={"counts": [1]})
    [claimed], _ = writer.claim_closed([pane])
    writer.write([window], [claimed], [{"kind": "p99"}], {"events": 3, "late_events": 2},
                 {"model:chat-api|llama-3.1-8b|v7": 2})
    assert writer.client.hget(LATE_EVENTS, "model:chat-api|llama-3.1-8b|v7") == b"2"
    assert 0 < writer.client.ttl(LATE_EVENTS) <= WINDOW_TTL_S
    # Fixed names, a stream capped by MAXLEN and an index trimmed by score: bounded without a TTL.
    bounded = {COUNTERS, ALERT_STREAM, WINDOW_INDEX}
    for key in writer.client.keys("*"):
        if key.decode() not in bounded:
            assert writer.client.ttl(key) > 0, key


def test_a_claim_left_unwritten_by_a_dead_worker_is_taken_over_and_a_written_one_never(redis_url):
    """Before: a worker killed between claiming a window and inserting its rollup kept the claim
    for good, and that window never reached window_rollups."""
    first = LiveStateWriter(redis_url, WINDOW_TTL_S, 2 * WINDOW_TTL_S, heartbeat_seconds=0.5)
    first.client.flushdb()
    first.worker_id = "host:1"  # the killed worker
    second = LiveStateWriter(redis_url, WINDOW_TTL_S, 2 * WINDOW_TTL_S, heartbeat_seconds=0.5)
    second.worker_id = "host:2"  # its restart
    unwritten, written = snapshot(model="a", series="chat-api|a|v7"), snapshot(model="b", series="chat-api|b|v7")
    assert first.claim_closed([unwritten, written]) == ([unwritten, written], [])
    first.mark_written([written])
    # The first is alive: its unwritten claim stands (held), the written one is done.
    assert second.claim_closed([unwritten, written]) == ([], [unwritten])
    heartbeat = f"iw:worker:{first.worker_id}"
    # It stops beating: dead.
    wait_for("the killed worker's heartbeat to expire", lambda: not first.client.exists(heartbeat), 10, 0.05)
    assert second.claim_closed([unwritten, written]) == ([unwritten], [])
    assert second.claim_closed([unwritten]) == ([unwritten], [])  # a retry of the same update
