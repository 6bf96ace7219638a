"""Start a real worker process (`inferwatch worker`) with given settings, and wait until it serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from inferwatch.processes import read_process
from inferwatch.processors.worker import WORKER_PROCESS
from inferwatch.query import QueryError, query_worker
from inferwatch.settings import Settings
from waiting import wait_for


def _toml_value(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def write_config(settings: Settings, path) -> None:
    """The settings as an inferwatch.toml, so the worker process gets exactly them."""
    fields = settings.model_dump(mode="json")
    path.write_text("".join(f"{name} = {_toml_value(value)}\n" for name, value in fields.items()))


class Worker:
    def __init__(self, settings: Settings, name: str = "worker"):
        self.settings = settings
        config = settings.state_dir / f"{name}.toml"
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        write_config(settings, config)
        self.log_path = settings.state_dir / "logs" / f"{name}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFERWATCH_")}
        self.process = subprocess.Popen([sys.executable, "-m", "inferwatch.cli", "worker"],
                                        env={**env, "INFERWATCH_CONFIG": str(config)},
                                        stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT)
        self.web_url = wait_for(f"{name} to serve", self._ready, 120)

    def _ready(self):
        assert self.process.poll() is None, f"worker exited: {self.log_path.read_text()[-3000:]}"
        info = read_process(self.settings, WORKER_PROCESS)
        if info is None or info["pid"] != self.process.pid:
            return None
        try:
            query_worker(info["web_url"], "SELECT 1")
            return info["web_url"]
        except (OSError, QueryError):
            return None

    def sql(self, query: str):
        return query_worker(self.web_url, query)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
