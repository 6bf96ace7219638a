"""Where an analyst's SQL runs.

With a ClickHouse server the query goes straight to it. With embedded chdb only one process may
open the database: while a worker runs, it owns it and the query goes to the worker's /sql page;
when no worker runs, the query opens the database itself.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from inferwatch.settings import Settings

QUERY_TIMEOUT_S = 300


class QueryError(RuntimeError):
    pass


def run_query(settings: Settings, sql: str, parameters: dict | None = None) -> tuple[list[str], list[list]]:
    dsn = settings.resolved_clickhouse_dsn
    if dsn.startswith("chdb://"):
        from inferwatch.processes import read_process
        from inferwatch.processors.worker import WORKER_PROCESS

        worker = read_process(settings, WORKER_PROCESS)
        if worker is not None:
            return query_worker(worker["web_url"], sql, parameters)
    from inferwatch.sinks.clickhouse.tables import ClickHouseTables

    sink = ClickHouseTables(dsn)
    try:
        result = sink.query(sql, parameters)
        return result.column_names, [list(r) for r in result.rows]
    finally:
        sink.close()


def query_worker(web_url: str, sql: str, parameters: dict | None = None) -> tuple[list[str], list[list]]:
    request = urllib.request.Request(
        f"{web_url}/sql", data=json.dumps({"sql": sql, "parameters": parameters or {}}).encode(),
        headers={"Content-Type": "application/json"}, method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=QUERY_TIMEOUT_S) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        body = json.load(exc)
        raise QueryError(body.get("error", str(exc))) from None
    return body["columns"], body["rows"]
