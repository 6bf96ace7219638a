"""Versioned migrations on chdb: applied once, recorded, and the feedback table matches its schema."""

import pytest

from inferwatch.schemas.registry import feedback_schema
from inferwatch.sinks.clickhouse.migrations import apply_events_ttl, events_ttl_days, migrations
from inferwatch.sinks.clickhouse.tables import ClickHouseTables

pytestmark = pytest.mark.integration  # embedded chdb (ClickHouse) engine: not in `make unit`


def test_migrations_apply_once_and_record_their_versions(tmp_path):
    shipped = [version for version, _, _ in migrations()]
    assert shipped == sorted(set(shipped)) and shipped[0] == 1
    sink = ClickHouseTables(f"chdb://{tmp_path}")
    try:
        assert sink.ensure_schema() == shipped
        tables_before = sink.query("SELECT name, create_table_query FROM system.tables WHERE database = currentDatabase()").rows
        assert sink.ensure_schema() == []  # a second start changes nothing
        assert sink.query("SELECT version FROM schema_migrations ORDER BY version").rows == [(v,) for v in shipped]
        assert sink.query("SELECT name, create_table_query FROM system.tables WHERE database = currentDatabase()").rows == tables_before
    finally:
        sink.close()


def test_feedback_table_has_a_column_per_feedback_field(tmp_path):
    sink = ClickHouseTables(f"chdb://{tmp_path}")
    try:
        sink.ensure_schema()
        columns = [row[0] for row in sink.query("DESCRIBE TABLE feedback").rows]
    finally:
        sink.close()
    assert columns == [field["name"] for field in feedback_schema()["fields"]]


def test_events_ttl_follows_the_setting_and_is_not_reapplied(tmp_path):
    sink = ClickHouseTables(f"chdb://{tmp_path}")
    try:
        sink.ensure_schema(events_ttl_days=30)
        assert events_ttl_days(sink._client) == 30
        assert apply_events_ttl(sink._client, 30) is False  # unchanged: no ALTER at the next start
        sink.ensure_schema(events_ttl_days=7)
        assert events_ttl_days(sink._client) == 7
        sink.ensure_schema(events_ttl_days=0)
        assert events_ttl_days(sink._client) == 0
    finally:
        sink.close()
