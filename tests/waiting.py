"""Waiting in tests until a condition holds; a timeout fails the test saying what it waited for.

The sync one is inferwatch.polling.wait_for with the tests' defaults; `until` is its async twin,
for tests on an event loop.
"""

from __future__ import annotations

import asyncio
import time

from inferwatch import polling

TIMEOUT_S = 180  # a real worker or broker on 2 cores busy with the rest of the suite
POLL_S = 0.2


def wait_for(what, condition, timeout_s=TIMEOUT_S, poll_s=POLL_S):
    """The condition's first true value; TimeoutError naming `what` after `timeout_s`."""
    return polling.wait_for(what, condition, timeout_s, poll_s)


async def until(what, condition, timeout_s=60, poll_s=0.05):
    """wait_for on an event loop: sleeps without blocking it."""
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout_s:g}s waiting for {what}")
        await asyncio.sleep(poll_s)
    return value
