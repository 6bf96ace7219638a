"""LiveStateWriter against a real redis-server: wide snapshots, and every key it writes bounded."""

import shutil
import socket
import subprocess
import time

import pytest
import redis

from inferwatch.sinks.redis.live_state import (
    ALERT_STREAM, COUNTERS, LATE_EVENTS, WINDOW_INDEX, LiveStateWriter, window_key,
)

WINDOW_TTL_S = 600


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path_factory.mktemp("redis"))],
        stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url
    server.terminate()
    server.wait(timeout=10)


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
    [claimed] = writer.claim_closed([pane])
    writer.write([window], [claimed], [{"kind": "p99"}], {"events": 3, "late_events": 2},
                 {"model:chat-api|llama-3.1-8b|v7": 2})
    assert writer.client.hget(LATE_EVENTS, "model:chat-api|llama-3.1-8b|v7") == b"2"
    assert 0 < writer.client.ttl(LATE_EVENTS) <= WINDOW_TTL_S
    # Fixed names, a stream capped by MAXLEN and an index trimmed by score: bounded without a TTL.
    bounded = {COUNTERS, ALERT_STREAM, WINDOW_INDEX}
    for key in writer.client.keys("*"):
        if key.decode() not in bounded:
            assert writer.client.ttl(key) > 0, key
