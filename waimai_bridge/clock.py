"""Time as the bridge reads it: epoch milliseconds from a clock that tests can replace."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], int]
"""A function returning the current time in epoch milliseconds."""


def system_clock() -> int:
    """The machine's time in epoch milliseconds."""
    return time.time_ns() // 1_000_000
