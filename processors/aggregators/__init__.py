"""Window metrics: one aggregator per module (base.py says what one is).

Adding a metric is adding a module here with one `Aggregator` subclass: it is found at import,
and its outputs reach Redis, `window_rollups` and `inferwatch status --windows` without more.
"""

from __future__ import annotations

import sys
from functools import cache

from inferwatch.processors.aggregators.base import Aggregator, Output
from inferwatch.processors.registry import discover


@cache
def registered() -> tuple[type[Aggregator], ...]:
    """Every aggregator of this package's modules, in (order, name) order."""
    found = sorted(discover(sys.modules[__name__], Aggregator), key=lambda cls: (cls.order, cls.name))
    names = [cls.name for cls in found]
    if len(set(names)) != len(names):
        raise TypeError(f"aggregator names must be unique: {names}")
    output_names = [o.name for cls in found for o in cls.outputs]
    if len(set(output_names)) != len(output_names):
        raise TypeError(f"aggregator output names must be unique: {output_names}")
    for cls in found:
        if cls.whole_series_only and not all(o.nullable for o in cls.outputs if not o.is_map):
            raise TypeError(f"{cls.__name__}: a whole-series-only aggregator's outputs are None on partition parts")
    return tuple(found)


def outputs() -> tuple[Output, ...]:
    """Every registered aggregator's outputs, in order."""
    return tuple(o for cls in registered() for o in cls.outputs)


def metrics_markdown() -> str:
    """The table of window metrics in docs/redis-keys.md: one row per aggregator, from the registry."""
    lines = ["| metric | Redis hash fields | `window_rollups` columns | what |", "| --- | --- | --- | --- |"]
    for cls in registered():
        fields = ", ".join(f"`{o.redis_fields.format('<name>') if o.is_map else o.name}`" for o in cls.outputs)
        columns = ", ".join(f"`{o.name}`" for o in cls.outputs if o.stored) or "none"
        what = " ".join((sys.modules[cls.__module__].__doc__ or "").split())
        if cls.whole_series_only:
            what += " Whole series only: absent for the parts of a key set that spans partitions."
        lines.append(f"| `{cls.name}` | {fields} | {columns} | {what} |")
    return "\n".join(lines)
