import sys

import pytest

from inferwatch.deploy import local_stack
from inferwatch.settings import Settings


# Fixtures that start a real component: the session's Kafka + redis-server (`stack`), a redis-server of
# a test's own (test_committer, test_live_state), an embedded chdb engine or a ClickHouse server
# (`dsn` of clickhouse_backends.py, `clickhouse` of test_event_validation and test_committer). A test
# using one, even through another fixture, is marked `integration`, so `make unit`
# (`-m "not integration and not install"`) starts none. Modules that open chdb without a fixture
# carry `pytestmark = pytest.mark.integration` themselves.
REAL_COMPONENT_FIXTURES = frozenset({"stack", "redis_server", "redis_url", "dsn", "clickhouse"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if REAL_COMPONENT_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """A real local stack (Kafka KRaft + redis-server) in a fresh state dir, for the session."""
    settings = Settings(state_dir=tmp_path_factory.mktemp("stack"))
    local_stack.up(settings, progress=lambda line: print(f"[stack] {line}"))
    yield settings
    local_stack.down(settings, progress=lambda line: print(f"[stack] {line}"))


def pytest_terminal_summary(terminalreporter):
    """The chaos suite's recovery times (tests/test_chaos.py), when it ran."""
    chaos = sys.modules.get("test_chaos")
    if chaos is not None and chaos.RECOVERY_S:
        terminalreporter.write_sep("-", "chaos: seconds from the end of each fault to every event counted")
        for case, seconds in chaos.RECOVERY_S.items():
            terminalreporter.write_line(f"{case:12s} {seconds:6.1f} s")
