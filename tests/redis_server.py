"""A redis-server of a test's own on 127.0.0.1, to stop and start again on the same port."""

from __future__ import annotations

import subprocess

import redis

from inferwatch.net import free_port
from waiting import wait_for


class RedisServer:
    def __init__(self, directory):
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        self._process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(self.directory)], stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)

        def answers() -> bool:
            assert self._process.poll() is None, f"redis-server exited with {self._process.returncode}"
            try:
                return client.ping()
            except redis.ConnectionError:
                return False

        wait_for(f"redis-server to answer on {self.url}", answers, 30, 0.05)
        return self

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
