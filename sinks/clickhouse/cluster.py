"""The cluster variant of the DDL, derived from the single-node migrations so the two never drift.

For users who outgrow one server: each table `t` becomes `t_local`, created ON CLUSTER with the
Replicated form of its engine (Keeper path `/clickhouse/tables/{shard}/{database}/t_local`,
replica `{replica}`; macros from the servers' config), plus a Distributed table `t` over it, so
the pipeline and the query pack keep using the same table names. `inferwatch cluster-ddl` prints
it for review and for running with clickhouse-client. It cannot be exercised here (chdb has no
cluster or Keeper); tests/test_clickhouse_cluster.py checks it statement by statement against the
single-node DDL.
"""

from __future__ import annotations

import re

from inferwatch.sinks.clickhouse.migrations import migrations, statements

_CREATE = re.compile(r"^CREATE TABLE IF NOT EXISTS (\w+)", re.M)
_ALTER = re.compile(r"^ALTER TABLE (\w+) ")
_ENGINE = re.compile(r"ENGINE = (\w*MergeTree)(?:\(([^)]*)\))?")
# Copies of one event (redeliveries) must land on one shard, where ReplacingMergeTree collapses them.
_SHARDING_KEY = {"inference_events": "cityHash64(event_id)", "feedback": "cityHash64(feedback_id)"}


def _replicated(statement: str, cluster: str) -> tuple[str, str]:
    table = _CREATE.search(statement)[1]
    local = f"{table}_local"

    def engine(match: re.Match) -> str:
        args = [f"'/clickhouse/tables/{{shard}}/{{database}}/{local}'", "'{replica}'"]
        if match[2]:
            args.append(match[2])
        return f"ENGINE = Replicated{match[1]}({', '.join(args)})"

    replicated = _ENGINE.sub(engine, _CREATE.sub(
        f"CREATE TABLE IF NOT EXISTS {local} ON CLUSTER '{cluster}'", statement, count=1), count=1)
    distributed = (f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER '{cluster}' AS {local}\n"
                   f"ENGINE = Distributed('{cluster}', currentDatabase(), {local}, {_SHARDING_KEY.get(table, 'rand()')})")
    return replicated, distributed


def _altered(statement: str, cluster: str) -> list[str]:
    """An ALTER on the local tables, and for column changes on the Distributed table too (its
    columns were copied from the local table when it was created)."""
    table = _ALTER.match(statement)[1]
    local = _ALTER.sub(f"ALTER TABLE {table}_local ON CLUSTER '{cluster}' ", statement, count=1)
    if "MODIFY SETTING" in statement:
        return [local]
    return [local, _ALTER.sub(f"ALTER TABLE {table} ON CLUSTER '{cluster}' ", statement, count=1)]


def cluster_ddl(cluster: str = "{cluster}") -> str:
    out = []
    for version, name, sql in migrations():
        out.append(f"-- migration {version:03d}_{name}, cluster variant")
        for statement in statements(sql):
            if _ALTER.match(statement):
                out.extend(f"{part};" for part in _altered(statement, cluster))
            elif _CREATE.search(statement) and _ENGINE.search(statement):
                out.extend(f"{part};" for part in _replicated(statement, cluster))
            else:
                raise ValueError(f"migration {version}: cannot derive a cluster variant of: {statement[:80]}")
    return "\n\n".join(out) + "\n"
