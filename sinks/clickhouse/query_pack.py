"""The analyst's query pack: one readable .sql file per question in queries/, run by name.

Every query takes the same parameters (ClickHouse `{name:Type}` placeholders): `since_seconds`
(look-back), `model` ('' = all models) and `limit` (for ranked lists). Queries over
inference_events read it FINAL, so an event delivered twice counts once.
"""

from __future__ import annotations

import re
from importlib import resources

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def query_names() -> list[str]:
    return sorted(p.name.removesuffix(".sql") for p in resources.files(__package__).joinpath("queries").iterdir()
                  if p.name.endswith(".sql"))


def query_text(name: str) -> str:
    if name not in query_names():
        raise ValueError(f"no query named {name!r}; the pack has: {', '.join(query_names())}")
    return resources.files(__package__).joinpath("queries", f"{name}.sql").read_text()


def description(name: str) -> str:
    """The query's first comment line."""
    return query_text(name).splitlines()[0].removeprefix("--").strip()


def parse_duration(text: str) -> int:
    """'90s', '15m', '1h', '7d' -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"duration {text!r}: expected a number and s, m, h or d (e.g. 1h, 7d)")
    return int(match[1]) * _UNIT_S[match[2]]


def parameters(since: str = "1h", model: str = "", limit: int = 20) -> dict:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return {"since_seconds": parse_duration(since), "model": model, "limit": limit}
