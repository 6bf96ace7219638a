"""Finding the classes of a plugin package: every module of it imported, its concrete subclasses
of a base collected. Adding an aggregator or a rule is adding a module; nothing lists them."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def discover(package: ModuleType, base: type) -> list[type]:
    """The concrete subclasses of `base` defined in `package`'s modules (and its subpackages'): those that set `name`
    themselves (a shared base in between sets none) and leave nothing abstract."""
    for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):  # subpackages too
        importlib.import_module(module.name)
    found, pending = [], [base]
    while pending:
        for cls in pending.pop().__subclasses__():
            pending.append(cls)
            if "name" in vars(cls) and not cls.__abstractmethods__ and cls.__module__.startswith(package.__name__):
                found.append(cls)
    return found
