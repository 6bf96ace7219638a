import sys

import pytest

from inferwatch.deploy import local_stack
from inferwatch.settings import Settings


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
