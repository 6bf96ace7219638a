"""Reference profile versions in Redis: every build is kept, `baseline list` shows them with the
active one marked, `baseline activate` makes an older one the reference again, and a version
that is not there is refused with the command to find one."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import redis

from inferwatch.processors.drift.profile import FeatureProfile
from inferwatch.sinks.redis.live_state import read_profiles, write_profiles
from redis_server import RedisServer

pytestmark = pytest.mark.integration

SCOPE = ("chat-api", "llama-3.1-8b-chat-ft")


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


def cli(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inferwatch.cli", *args], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "INFERWATCH_REDIS_URL": url})


def profile(scale: float, built_at_ms: int) -> dict[str, FeatureProfile]:
    values = np.random.default_rng(1).lognormal(6, 0.9, 2000) * scale
    return {"input_tokens": FeatureProfile.numeric("input_tokens", values, source=f"x{scale}", built_at_ms=built_at_ms)}


def test_builds_are_kept_listed_and_an_older_one_activated_again(redis_server):
    client = redis.Redis.from_url(redis_server.url)
    write_profiles(client, {SCOPE: profile(1.0, 1_790_000_000_000)})
    write_profiles(client, {SCOPE: profile(2.0, 1_790_000_600_000)})
    assert read_profiles(client)[SCOPE]["input_tokens"].source == "x2.0"

    listed = cli(redis_server.url, "baseline", "list")
    assert listed.returncode == 0, listed.stderr
    lines = [line for line in listed.stdout.splitlines() if "chat-api/" in line]
    assert [("1790000600000" in line, "active" in line) for line in lines] == [(True, True), (False, False)]

    activated = cli(redis_server.url, "baseline", "activate", "chat-api/llama-3.1-8b-chat-ft", "1790000000000")
    assert activated.returncode == 0, activated.stderr
    assert read_profiles(client)[SCOPE]["input_tokens"].source == "x1.0"

    missing = cli(redis_server.url, "baseline", "activate", "chat-api/llama-3.1-8b-chat-ft", "123")
    assert missing.returncode == 1 and "no version 123" in missing.stderr and "baseline list" in missing.stderr
    assert read_profiles(client)[SCOPE]["input_tokens"].source == "x1.0"
