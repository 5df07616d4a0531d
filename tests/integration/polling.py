"""Wait for a condition inside one gevent hub: in-process meshes only progress while the test yields."""
from __future__ import annotations

import time
from typing import Callable

import gevent

POLL_S = 0.02


def wait_for(condition: Callable[[], object], timeout_s: float = 10.0) -> None:
    """Poll `condition` until it is true, yielding to the hub between tries; fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s")
        gevent.sleep(POLL_S)
