"""One clickhouse-connect client for either backend, chosen by the DSN.

- ``chdb:///abs/path``: embedded chdb in this process (clickhouse-connect >= 1.x drives it through
  the same client API as a server).
- ``http(s)://user:pass@host:8123/db``: a ClickHouse server. The database must exist.

chdb constraints, measured with chdb 4.4 / clickhouse-connect 1.12 (the tests pin them down):
- One process per database path: the engine flock()s ``<path>/status``; a second process fails
  with a bare "Error initializing EmbeddedServer", so we probe the lock to say what happened.
- One path per process at a time: any number of clients may share the open path, but opening a
  different path while a client is open fails ("EmbeddedServer already initialized with path").
  Once every client is closed the engine shuts down, its lock is released, and another path (or
  another process) can open.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ProgrammingError

SCHEMES = ("chdb", "http", "https")


class ClickHouseLocked(RuntimeError):
    """The chdb database is open in another process."""

    def __init__(self, path: str, pid: int | None = None):
        self.path = path
        self.pid = pid
        holder = f"another process (PID {pid})" if pid else "another process"
        super().__init__(
            f"the chdb database at {path} is locked by {holder}: only one process may open an "
            "embedded chdb database at a time. While the pipeline runs, its worker holds it, so run "
            "queries through `inferwatch sql` (it sends them to the worker); or stop the worker, or "
            "use a ClickHouse server (INFERWATCH_CLICKHOUSE_DSN=http://...)."
        )


class ChdbPathConflict(RuntimeError):
    """This process already has another chdb path open (chdb hosts one path per process)."""


def connect(dsn: str) -> Client:
    """A clickhouse-connect client for ``dsn``; ValueError if the DSN is malformed.

    Datetimes come back timezone-aware (``tz_mode="aware"``): the tables are all UTC and an aware
    value cannot be misread as local time.
    """
    scheme = urlsplit(dsn).scheme.lower() if dsn else ""
    if scheme == "chdb":
        return _connect_chdb(_chdb_path(dsn))
    if scheme in ("http", "https"):
        if not urlsplit(dsn).hostname:
            raise ValueError(f"ClickHouse DSN {_redact(dsn)!r} has no host: expected {scheme}://user:pass@host:8123/db")
        return clickhouse_connect.get_client(dsn=dsn, tz_mode="aware")
    raise ValueError(
        f"unsupported ClickHouse DSN {_redact(dsn)!r}: expected chdb:///absolute/path (embedded) "
        "or http(s)://user:pass@host:8123/db (server)"
    )


def _chdb_path(dsn: str) -> str:
    parts = urlsplit(dsn)
    # chdb://relative/x would put "relative" in the host part and silently open /x.
    if parts.netloc or not parts.path.startswith("/"):
        raise ValueError(f"chdb DSN {dsn!r} must name an absolute path: chdb:///absolute/path")
    return parts.path


def _connect_chdb(path: str) -> Client:
    Path(path).mkdir(parents=True, exist_ok=True)
    try:
        return clickhouse_connect.get_client(dsn=f"chdb://{path}", tz_mode="aware")
    except ProgrammingError as exc:
        if "already initialized with path" in str(exc):
            raise ChdbPathConflict(
                f"cannot open chdb at {path}: this process already has another chdb path open "
                f"and chdb hosts one path per process; close every client of it first ({exc})"
            ) from exc
        locked, pid = _lock_holder(path)
        if locked:
            raise ClickHouseLocked(os.path.realpath(path), pid) from exc
        raise


def _lock_holder(path: str) -> tuple[bool, int | None]:
    """Is ``<path>/status`` flock()ed (by another process), and by which PID (from its text)?

    Only called after a failed open: within this process chdb would have succeeded on a path it
    holds, so a held lock here belongs to someone else.
    """
    status = Path(path) / "status"
    try:
        fd = os.open(status, os.O_RDONLY)
    except FileNotFoundError:
        return False, None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            return True, _status_pid(status)
        return False, None  # closing the descriptor below releases our probe lock
    finally:
        os.close(fd)


def _status_pid(status: Path) -> int | None:
    # ClickHouse writes "PID: <n>" as the first line of the status file it locks.
    try:
        first = status.read_text().splitlines()[0]
        return int(first.removeprefix("PID:").strip())
    except (OSError, IndexError, ValueError):
        return None


def _redact(dsn: str) -> str:
    """The DSN without its password, for error messages."""
    parts = urlsplit(dsn or "")
    if parts.password is None:
        return dsn
    return dsn.replace(f":{parts.password}@", ":***@", 1)
