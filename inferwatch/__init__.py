"""Streaming monitoring for LLM inference. What an inference service needs is `from inferwatch import Monitor`.

`Monitor` is resolved lazily (PEP 562), so importing any `inferwatch.*` module (the worker's, the
CLI's) does not import the SDK, and importing the SDK imports none of the worker's dependencies
(faust, chdb, pyarrow, redis, pandas): a plain `pip install inferwatch` does not have them.
tests/test_packaging.py checks both in a fresh virtualenv.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inferwatch.producers.monitor import Monitor

__all__ = ["Monitor"]


def __getattr__(name: str):
    if name == "Monitor":
        from inferwatch.producers.monitor import Monitor

        return Monitor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
