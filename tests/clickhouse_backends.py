"""The ClickHouse backends the tests run on: embedded chdb always, a server when one is configured.

Set INFERWATCH_CLICKHOUSE_URL=http://user:pass@host:8123 to run the backend tests on a server as
well; they work in a fresh database created (and dropped) for the session. Without it the server
variants are skipped, with that reason shown by `pytest -ra`.
Import the fixtures into a test module: `from clickhouse_backends import dsn, server_dsn`.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

from inferwatch.sinks.clickhouse.client import connect

SERVER_URL_ENV = "INFERWATCH_CLICKHOUSE_URL"


@contextmanager
def server_database():
    """A DSN for a fresh database on the configured server, dropped afterwards; skips the test
    (saying why) when no server is configured."""
    url = os.environ.get(SERVER_URL_ENV)
    if not url:
        pytest.skip(f"no ClickHouse server: set {SERVER_URL_ENV}")
    database = f"inferwatch_test_{uuid.uuid4().hex[:8]}"
    admin = connect(urlunsplit(urlsplit(url)._replace(path="/default")))
    admin.command(f"CREATE DATABASE {database}")
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{database}"))
    finally:
        admin.command(f"DROP DATABASE IF EXISTS {database}")
        admin.close()


@pytest.fixture(scope="session")
def server_dsn():
    with server_database() as dsn:
        yield dsn


@pytest.fixture(params=["chdb", "server"])
def dsn(request, tmp_path):
    if request.param == "chdb":
        return f"chdb://{tmp_path / 'clickhouse'}"
    return request.getfixturevalue("server_dsn")
