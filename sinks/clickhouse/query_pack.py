"""The analyst's query pack: one readable .sql file per question in queries/, run by name.

Every query takes the same parameters (ClickHouse `{name:Type}` placeholders): `since_seconds`
(look-back), `model` ('' = all models) and `limit` (for ranked lists). Queries over
inference_events read it FINAL, so an event delivered twice counts once.
"""

from __future__ import annotations

from importlib import resources

from inferwatch.durations import parse_duration


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


def parameters(since: str = "1h", model: str = "", limit: int = 20) -> dict:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return {"since_seconds": parse_duration(since), "model": model, "limit": limit}
