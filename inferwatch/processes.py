"""The processes inferwatch runs: their identity, and the records of those it started.

Every process we start (the local stack's Kafka and Redis, a worker) is recorded in
<state_dir>/run/<name>.json: its PID, its start time, a command-line marker and its address. A
record names one process for good: a recorded PID whose start time or command line no longer
matches (the process ended and the PID was reused) is not ours, and `stop_process` leaves it alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from inferwatch.polling import wait_for

if TYPE_CHECKING:
    from inferwatch.settings import Settings

STOP_TIMEOUT_S = 30

Progress = Callable[[str], None]


def worker_id() -> str:
    """This process among every worker and sink of a deployment: "<host>:<pid>"."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _record_path(settings: Settings, name: str) -> Path:
    return settings.run_dir / f"{name}.json"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _start_time(pid: int) -> int | None:
    """Start time of a process (clock ticks since boot): with the PID, it names one process for good."""
    try:
        # Field 22 of /proc/<pid>/stat; split after the command name, which may hold spaces.
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def register_process(settings: Settings, name: str, pid: int, marker: str = "", **info) -> None:
    """Record a process we started; `marker` must appear in its command line (default: its current
    one; a server that rewrites its process title, as redis-server does, needs its own marker)."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "start_time": _start_time(pid), "marker": marker or _cmdline(pid).strip(), **info}
    path = _record_path(settings, name)
    path.with_suffix(".tmp").write_text(json.dumps(record))
    path.with_suffix(".tmp").replace(path)


def read_record(settings: Settings, name: str) -> dict:
    """The record as written, whether or not its process still runs (FileNotFoundError: none)."""
    return json.loads(_record_path(settings, name).read_text())


def read_process(settings: Settings, name: str) -> dict | None:
    """The record of a running process we started, or None (no record, or the process is gone)."""
    try:
        record = read_record(settings, name)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    pid = record["pid"]
    if record.get("start_time") is not None and record["start_time"] != _start_time(pid):
        return None  # another process now has this PID
    return record if record["marker"] and record["marker"] in _cmdline(pid) else None


def stop_process(settings: Settings, name: str, progress: Progress = lambda _: None) -> None:
    """SIGTERM a recorded process (SIGKILL after STOP_TIMEOUT_S) and remove its record."""
    record = read_process(settings, name)
    if record is not None:
        pid = record["pid"]
        progress(f"stopping {name} (pid {pid})")

        def stopped() -> bool:
            return read_process(settings, name) is None or _is_zombie(pid)

        try:
            os.kill(pid, signal.SIGTERM)
            try:
                wait_for(f"{name} (pid {pid}) to stop", stopped, STOP_TIMEOUT_S)
            except TimeoutError:
                progress(f"{name} did not stop in {STOP_TIMEOUT_S}s: killing it")
                os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(TimeoutError):
                    wait_for(f"{name} (pid {pid}) to die", stopped, 10)
        except ProcessLookupError:
            pass
    _record_path(settings, name).unlink(missing_ok=True)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True
