"""When each push of the lunch service is sent, and the platform time it carries.

Three phases, so that SPEC §5's accept hold shows: orders come in (creation, acceptance,
a cancel meant to land within the hold) over :attr:`Timeline.arrival_ms`; once every hold is
over, the kitchen, riders, completions, cancel and refund requests and answers; then the
actions through the API. A step's platform time runs :data:`SPEED` times faster than the
demo, from half past eleven, so the platform sees a lunch rush while the demo takes seconds.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from waimai_bridge.demo.channel import DemoOrder

SPEED = 120
"""Platform milliseconds per demo millisecond: a demo second is two minutes of lunch."""

LUNCH_START = dt.time(11, 30)


class Phase(StrEnum):
    """The part of the service a push belongs to."""

    PLACING = "orders coming in"
    SERVICE = "kitchen, riders, refunds"
    ACTIONS = "approvals through the API"


@dataclass(frozen=True)
class Timeline:
    """The demo's timing, in demo milliseconds from the start of the service."""

    hold_ms: int
    arrival_ms: int
    service_ms: int
    placing_gap_ms: tuple[int, int] = (150, 450)
    service_gap_ms: tuple[int, int] = (200, 600)

    @classmethod
    def for_orders(cls, orders: int, *, hold_ms: int) -> Timeline:
        """A timeline sized to ``orders``: busier, not longer, as orders grow."""
        return cls(
            hold_ms=hold_ms,
            arrival_ms=min(max(orders * 80, 3_000), 12_000),
            service_ms=min(max(orders * 50, 3_000), 8_000),
        )

    @property
    def service_from_ms(self) -> int:
        """When the service phase starts: after the last possible acceptance's hold, with a
        margin for the worker to store the orders."""
        placing_span = 3 * self.placing_gap_ms[1]
        return self.arrival_ms + placing_span + self.hold_ms + 1_000


@dataclass(frozen=True)
class Send:
    """One push to send ``at_ms`` demo milliseconds after the start."""

    at_ms: int
    phase: Phase
    order: int
    step: str


def schedule(orders: Sequence[DemoOrder], timeline: Timeline, rng: random.Random) -> list[Send]:
    """Every placing and service step of ``orders`` (by index), in the order to send them."""
    sends: list[Send] = []
    for index, order in enumerate(orders):
        at = rng.randrange(timeline.arrival_ms)
        for number, step in enumerate(order.placing):
            at += rng.randrange(*timeline.placing_gap_ms) if number else 0
            sends.append(Send(at, Phase.PLACING, index, step))
        at = timeline.service_from_ms + rng.randrange(max(timeline.service_ms // 2, 1))
        for number, step in enumerate(order.service):
            at += rng.randrange(*timeline.service_gap_ms) if number else 0
            sends.append(Send(at, Phase.SERVICE, index, step))
    return sorted(sends, key=lambda send: (send.at_ms, send.order))


def lunch_start_ms(now: dt.datetime, span_ms: int) -> int:
    """The platform time of the service's start: half past eleven today, or yesterday when
    the service (``span_ms`` demo ms) would not yet be over by ``now`` (a local time)."""
    day = now.date()
    start = dt.datetime.combine(day, LUNCH_START, tzinfo=now.tzinfo)
    if start + dt.timedelta(milliseconds=span_ms * SPEED) > now:
        start -= dt.timedelta(days=1)
    return int(start.timestamp() * 1000)


def platform_ms(lunch_start: int, demo_ms: int) -> int:
    """The platform time of a step sent ``demo_ms`` after the start."""
    return lunch_start + demo_ms * SPEED
