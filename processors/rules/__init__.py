"""Alert rules: one rule per module (base.py says what one is).

Adding a rule is adding a module here with one `Rule` subclass: it is found at import and built
from the settings by `configured`.
"""

from __future__ import annotations

import sys
from functools import cache

from inferwatch.processors.registry import discover
from inferwatch.processors.rules.base import Rule


@cache
def registered() -> tuple[type[Rule], ...]:
    """Every rule of this package's modules, by name."""
    return tuple(sorted(discover(sys.modules[__name__], Rule), key=lambda cls: cls.name))


def configured(settings, keysets: list) -> list[Rule]:
    """The rules the settings turn on (Rule.from_settings)."""
    return [rule for cls in registered() if (rule := cls.from_settings(settings, keysets)) is not None]
