"""Waiting until a condition holds, the one poll loop of the code base (tests/waiting.py is the tests')."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(what: str, condition: Callable[[], T], timeout_s: float, poll_s: float = 0.1) -> T:
    """Call `condition` every `poll_s` until it returns a true value, and return that value.

    Raises TimeoutError naming `what` (e.g. "Kafka to answer on 127.0.0.1:9092") once `timeout_s`
    has passed; an exception from `condition` propagates at once."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout_s:g}s waiting for {what}")
        time.sleep(poll_s)
    return value
