"""Waiting on a state, never on a guess of how long something takes: `wait_until` polls a
condition and fails, naming what it waited for, once `timeout` seconds have passed without it."""

from __future__ import annotations

import time
from typing import Callable

POLL_S = 0.01  # how often the condition is asked (not how long anything is expected to take)


def wait_until(condition: Callable[[], object], timeout: float = 30.0, what: str = "the condition",
               poll_s: float = POLL_S) -> None:
    """Returns once `condition()` is true; raises AssertionError after `timeout` seconds. A costly
    condition (a request to a server) is asked less often with a larger `poll_s`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(poll_s)
