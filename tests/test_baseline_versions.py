"""Reference profile versions in Redis: every build is kept, `baseline list` shows them with the
active one marked, `baseline activate` makes an older one the reference again, and a version
that is not there is refused with the command to find one."""

from __future__ import annotations

import json
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


def test_a_fine_tuning_set_adds_prompt_and_response_length_profiles(redis_server, tmp_path):
    rng = np.random.default_rng(2)
    lines = []
    for i in range(3000):
        prompt, answer = "word " * int(rng.integers(5, 200)), "x" * int(rng.integers(10, 900))
        record = ({"prompt": prompt, "completion": answer} if i % 2 else
                  {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": prompt},
                                {"role": "assistant", "content": answer}]})
        lines.append(json.dumps(record))
    tuning_set = tmp_path / "tuning.jsonl"
    tuning_set.write_text("\n".join(lines) + "\n")
    scope_args = ["--service", SCOPE[0], "--model", SCOPE[1]]

    refused = cli(redis_server.url, "baseline", "build", "--from-jsonl", str(tuning_set), *scope_args)
    assert refused.returncode == 1 and "no reference profile" in refused.stderr  # nothing to add to yet

    client = redis.Redis.from_url(redis_server.url)
    write_profiles(client, {SCOPE: profile(1.0, 1_790_000_000_000)})
    built = cli(redis_server.url, "baseline", "build", "--from-jsonl", str(tuning_set), *scope_args)
    assert built.returncode == 0, built.stderr
    features = read_profiles(client)[SCOPE]
    assert set(features) == {"input_tokens", "prompt_chars", "response_chars"}  # added to, not replaced
    prompt_chars = np.array([len(json.loads(line).get("prompt") or json.loads(line)["messages"][1]["content"])
                             for line in lines], dtype=float)
    assert np.array_equal(features["prompt_chars"].counts(prompt_chars) / len(lines), features["prompt_chars"].proportions)
    assert "3,000 records of tuning.jsonl" in features["prompt_chars"].source

    tuning_set.write_text(lines[0] + "\n" + '{"prompt": "no answer"}\n')
    bad = cli(redis_server.url, "baseline", "build", "--from-jsonl", str(tuning_set), *scope_args)
    assert bad.returncode == 1 and "tuning.jsonl: line 2" in bad.stderr
