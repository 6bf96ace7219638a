"""docker-compose.yml, which no test here can run (no Docker engine), says what the code expects:
its worker installs the extra the worker needs, and every INFERWATCH_* variable it sets is a setting."""

import re
import tomllib
from pathlib import Path

from inferwatch.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = (ROOT / "docker-compose.yml").read_text()


def test_the_worker_container_installs_the_worker_extra():
    """Before: `pip install /app`, which since the packaging split is the SDK alone, no Faust."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    installs = re.findall(r"pip install [^&\"]*?/app(?:\[([a-z,-]+)\])?", COMPOSE)
    assert installs, "no `pip install ... /app` in docker-compose.yml"
    for named in installs:
        assert "worker" in named.split(","), f"the worker container installs /app[{named}], not the worker extra"
    assert "worker" in extras


def test_every_inferwatch_variable_it_sets_is_a_setting():
    names = re.findall(r"\bINFERWATCH_([A-Z0-9_]+)\s*:", COMPOSE)
    assert names
    assert [n for n in names if n.lower() not in Settings.model_fields] == []
