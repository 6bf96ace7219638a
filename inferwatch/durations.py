"""Durations as people write them in settings and on the command line: "90s", "15m", "1h", "7d"."""

from __future__ import annotations

import re

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(\d+)([a-z])$")


def parse_duration(text: str, units: str = "smhd") -> int:
    """'90s', '15m', '1h', '7d' -> seconds; `units` narrows the units accepted (e.g. "smh")."""
    match = _DURATION.match(text.strip())
    if not match or match[2] not in units:
        names = f"{', '.join(units[:-1])} or {units[-1]}" if len(units) > 1 else units
        examples = "1h, 7d" if "d" in units else "90s, 1h"
        raise ValueError(f"duration {text!r}: expected a number and {names} (e.g. {examples})")
    return int(match[1]) * UNIT_SECONDS[match[2]]
