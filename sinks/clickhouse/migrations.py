"""Versioned DDL: migrations/NNN_name.sql applied in order, once each, recorded in a table.

`apply_migrations` runs at every start (ClickHouseTables.ensure_schema). A migration's statements
are idempotent, so one interrupted half-way is simply run again; its version is recorded in
`schema_migrations` only after all of them succeeded.

The rollup columns follow the registered aggregators (processors/aggregators/): a new aggregator's
stored outputs are added to `window_rollups` by `apply_rollup_columns`, so adding a metric needs no
migration file. (Changing an existing output's type still does.)

The raw events' TTL is configuration, not schema (`clickhouse_events_ttl_days`): `apply_events_ttl`
sets it at start-up when it differs from the table's.
"""

from __future__ import annotations

import re
from importlib import resources

from inferwatch.processors.aggregators import outputs as aggregator_outputs

_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_TTL_DAYS = re.compile(r"TTL toDateTime\(ts\) \+ toIntervalDay\((\d+)\)")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version     UInt32,
    name        String,
    applied_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY version
"""


def migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) of every migration shipped, in version order."""
    found = []
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append((int(match[1]), match[2], entry.read_text()))
    return sorted(found)


def statements(sql: str) -> list[str]:
    """A migration's statements: full-line `--` comments dropped, split on `;`."""
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip() for s in code.split(";") if s.strip()]


def applied_versions(client) -> set[int]:
    return {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}


def apply_migrations(client) -> list[int]:
    """Apply the migrations not recorded yet; returns the versions applied now."""
    client.command(_LEDGER)
    done = applied_versions(client)
    applied = []
    for version, name, sql in migrations():
        if version in done:
            continue
        for statement in statements(sql):
            client.command(statement)
        client.insert("schema_migrations", [[version, name]], column_names=["version", "name"])
        applied.append(version)
    return applied


def apply_rollup_columns(client) -> list[str]:
    """Add to window_rollups the stored outputs of the registered aggregators it lacks, each after
    the one before it; returns the columns added."""
    existing = {row[0] for row in client.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'window_rollups'").result_rows}
    added, previous = [], "events"
    for output in aggregator_outputs():
        if not output.stored:
            continue
        if output.name not in existing:
            client.command(f"ALTER TABLE window_rollups ADD COLUMN IF NOT EXISTS {output.name} "
                           f"{output.clickhouse_type} AFTER {previous}")
            added.append(output.name)
        previous = output.name
    return added


def events_ttl_days(client) -> int:
    """The raw events' TTL in days as the table has it; 0 = none."""
    engine = client.command("SELECT engine_full FROM system.tables "
                            "WHERE database = currentDatabase() AND name = 'inference_events'")
    match = _TTL_DAYS.search(engine)
    return int(match[1]) if match else 0


def apply_events_ttl(client, days: int) -> bool:
    """Give inference_events a TTL of `days` on event time (0: none); True if it changed."""
    if events_ttl_days(client) == days:
        return False
    if days:
        client.command(f"ALTER TABLE inference_events MODIFY TTL toDateTime(ts) + toIntervalDay({int(days)})")
    else:
        client.command("ALTER TABLE inference_events REMOVE TTL")
    return True
