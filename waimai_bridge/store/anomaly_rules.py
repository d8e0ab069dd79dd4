"""The anomaly rules (SPEC §9), as data: each rule a name, what it means, and the condition
over a platform order and its stored order under which its anomaly stays open.

Rules the workers *evaluate* open an anomaly on every order their condition holds for (once
per order) and resolve it when the condition no longer holds; the other rules' anomalies are
opened as the order is stored (:mod:`waimai_bridge.store.lines`) and resolved the same way.
Every condition but the unmapped SKU's includes "the order is not finished"; an unmapped SKU
stays open until the mapping knows it (the order's lines are wrong until then). A channel's
rule holds for no order: its anomalies are about a store's channel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    ColumnExpressionArgument,
    and_,
    case,
    exists,
    false,
    literal,
    or_,
    select,
)

from waimai_bridge.models import OrderState, PlatformState, RiderState
from waimai_bridge.settings import AnomalyRule, AnomalySettings
from waimai_bridge.store.tables import Order, OrderItem, PlatformOrder

MINUTE_MS = 60_000

FINISHED = (
    OrderState.COMPLETED, OrderState.REFUNDED, OrderState.PARTIALLY_REFUNDED,
    OrderState.CANCELLED,
)  # fmt: skip
"""Order states no anomaly stays open in."""
UNFINISHED = tuple(state for state in OrderState if state not in FINISHED)
WAITING_FOR_RIDER = (OrderState.PAID, OrderState.ACCEPTED, OrderState.PREPARING, OrderState.READY)


@dataclass(frozen=True)
class Window:
    """What a round of evaluation measures against: the time, the thresholds, and what the
    loaded plugins say of their platforms."""

    now_ms: int
    settings: AnomalySettings
    rider_platforms: frozenset[str]
    """Platforms whose plugins send rider events (others' orders never have a rider)."""
    request_minutes: Mapping[str, float]
    """Per platform: how long a cancel or refund request may wait unanswered."""

    def before(self, minutes: float) -> int:
        """The time ``minutes`` before now, in ms."""
        return self.now_ms - int(minutes * MINUTE_MS)


Condition = Callable[[Window], ColumnExpressionArgument[bool]]
"""A rule's condition over ``PlatformOrder`` outer-joined with its ``Order``."""


@dataclass(frozen=True)
class Rule:
    """One anomaly rule."""

    name: AnomalyRule
    says: str
    """What the anomaly means, as its detail reads."""
    holds: Condition
    evaluated: bool = True
    """Opened by the workers' evaluation (False: opened as the order is stored)."""
    of_channel: bool = False
    """About a store's channel, not an order: opened and resolved as the channel's
    authorization changes (:mod:`waimai_bridge.pipeline.credentials`), never evaluated."""


def _unfinished() -> ColumnExpressionArgument[bool]:
    return Order.state.in_([state.value for state in UNFINISHED])


def _not_accepted(window: Window) -> ColumnExpressionArgument[bool]:
    return and_(
        PlatformOrder.order_id.is_(None),
        PlatformOrder.discarded.is_(False),
        PlatformOrder.hold_started_at_ms.is_(None),
        PlatformOrder.state_code == int(PlatformState.CREATED),
        PlatformOrder.created_at_ms < window.before(window.settings.not_accepted_minutes),
    )


def _no_rider(window: Window) -> ColumnExpressionArgument[bool]:
    if not window.rider_platforms:
        return false()
    return and_(
        Order.state.in_([state.value for state in WAITING_FOR_RIDER]),
        Order.rider_state.is_(None),
        PlatformOrder.platform.in_(sorted(window.rider_platforms)),
        PlatformOrder.hold_started_at_ms < window.before(window.settings.no_rider_minutes),
    )


def _rider_at_store(window: Window) -> ColumnExpressionArgument[bool]:
    return and_(
        _unfinished(),
        Order.rider_state == RiderState.AT_STORE.value,
        Order.updated_at_ms < window.before(window.settings.rider_at_store_minutes),
    )


def _request_unanswered(window: Window) -> ColumnExpressionArgument[bool]:
    default_ms = int(window.settings.request_unanswered_minutes * MINUTE_MS)
    stated = {
        platform: literal(int(minutes * MINUTE_MS), BigInteger)
        for platform, minutes in window.request_minutes.items()
    }
    default = literal(default_ms, BigInteger)
    waited_ms = case(stated, value=PlatformOrder.platform, else_=default) if stated else default
    return and_(
        PlatformOrder.order_state.is_not(None),
        PlatformOrder.discarded.is_(False),
        or_(PlatformOrder.order_id.is_(None), _unfinished()),
        PlatformOrder.updated_at_ms + waited_ms < window.now_ms,
    )


def _not_completed(window: Window) -> ColumnExpressionArgument[bool]:
    return and_(
        _unfinished(),
        PlatformOrder.created_at_ms < window.before(window.settings.not_completed_hours * 60),
    )


def _unmapped_line(window: Window) -> ColumnExpressionArgument[bool]:
    return exists(
        select(OrderItem.id).where(OrderItem.order_id == Order.id, OrderItem.unmapped.is_(True))
    )


def _order_open(window: Window) -> ColumnExpressionArgument[bool]:
    return _unfinished()


def _no_order(window: Window) -> ColumnExpressionArgument[bool]:
    return false()


RULES: tuple[Rule, ...] = (
    Rule(AnomalyRule.NOT_ACCEPTED, "not accepted in time", _not_accepted),
    Rule(AnomalyRule.NO_RIDER, "accepted, and no rider in time", _no_rider),
    Rule(AnomalyRule.RIDER_AT_STORE, "the rider waits at the store", _rider_at_store),
    Rule(AnomalyRule.REQUEST_UNANSWERED,
         "a cancel or refund request waits for an answer; the platform may agree by itself",
         _request_unanswered),
    Rule(AnomalyRule.NOT_COMPLETED, "not completed in time", _not_completed),
    Rule(AnomalyRule.UNMAPPED_SKU, "a line's SKU maps to no product", _unmapped_line,
         evaluated=False),
    Rule(AnomalyRule.TOTAL_MISMATCH, "the stated total disagrees with the lines", _order_open,
         evaluated=False),
    Rule(AnomalyRule.INCOME_MISMATCH,
         "the income the platform states after a refund is not what the rule gives",
         _order_open, evaluated=False),
    Rule(AnomalyRule.PRICE_UNREADABLE, "the price breakdown cannot be read", _order_open,
         evaluated=False),
    Rule(AnomalyRule.LINES_NOT_STORED, "the lines could not be stored", _order_open,
         evaluated=False),
    Rule(AnomalyRule.CHANNEL_UNAUTHORIZED,
         "the store's channel is unauthorized: nothing is sent to the platform for it",
         _no_order, evaluated=False, of_channel=True),
)  # fmt: skip
"""Every rule, by :class:`~waimai_bridge.settings.AnomalyRule`."""
