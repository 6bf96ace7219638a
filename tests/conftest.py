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
