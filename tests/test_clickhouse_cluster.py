"""The cluster DDL stays in step with the single-node migrations, table by table, column by column."""

import re

from inferwatch.sinks.clickhouse.cluster import cluster_ddl
from inferwatch.sinks.clickhouse.migrations import migrations, statements

TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)(?: ON CLUSTER '[^']+')?\s*\((.*?)\)\s*ENGINE = (\w+)", re.S)
DISTRIBUTED = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) ON CLUSTER '[^']+' AS (\w+)\s+ENGINE = Distributed\(")


def columns(block: str) -> list[tuple[str, str]]:
    """(name, type) per column line of a CREATE TABLE's column block."""
    out = []
    for line in block.splitlines():
        line = line.strip().rstrip(",")
        if line and not line.startswith("--"):
            name, rest = line.split(None, 1)
            out.append((name, rest))
    return out


def test_every_table_has_a_replicated_local_table_with_the_same_columns_and_a_distributed_one():
    single = {m[1]: (columns(m[2]), m[3])
              for _, _, sql in migrations() for s in statements(sql) for m in [TABLE.search(s)] if m}
    ddl = cluster_ddl("prod")
    local = {m[1]: (columns(m[2]), m[3]) for m in TABLE.finditer(ddl)}
    distributed = dict(DISTRIBUTED.findall(ddl))
    assert set(single) == {"inference_events", "window_rollups", "dead_letters", "alerts", "feedback", "drift_metrics",
                           "feedback_rollups"}
    assert set(local) == {f"{t}_local" for t in single}
    assert distributed == {t: f"{t}_local" for t in single}
    for table, (cols, engine) in single.items():
        cluster_cols, cluster_engine = local[f"{table}_local"]
        assert cluster_cols == cols, table
        assert cluster_engine == f"Replicated{engine}", table
    assert "ON CLUSTER 'prod'" in ddl and "cityHash64(event_id)" in ddl


def test_every_alter_reaches_the_local_tables_and_column_changes_the_distributed_ones():
    ddl = cluster_ddl("prod")
    alters = [s for _, _, sql in migrations() for s in statements(sql) if s.startswith("ALTER TABLE ")]
    assert alters
    for statement in alters:
        table, change = statement.removeprefix("ALTER TABLE ").split(" ", 1)
        assert f"ALTER TABLE {table}_local ON CLUSTER 'prod' {change};" in ddl
        on_distributed = f"ALTER TABLE {table} ON CLUSTER 'prod' {change};" in ddl
        assert on_distributed == ("MODIFY SETTING" not in change), statement
