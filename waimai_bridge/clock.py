"""Time as the bridge reads it: epoch milliseconds from a clock that tests can replace."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from waimai_bridge.bounds import MAX_INT64

Clock = Callable[[], int]
"""A function returning the current time in epoch milliseconds."""


def system_clock() -> int:
    """The machine's time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def moment_ms(text: str) -> int:
    """A moment given as epoch milliseconds or an ISO 8601 time with its zone, in epoch
    milliseconds; ``ValueError`` naming the forms for anything else."""
    if text.isascii() and text.isdigit():  # str.isdigit() also takes "²"
        if len(text) > 19 or int(text) > MAX_INT64:
            raise ValueError("is out of range")
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError("must be epoch milliseconds or an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ValueError("needs a time zone, e.g. 2026-11-22T08:00:00+08:00")
    return int(moment.timestamp() * 1000)
