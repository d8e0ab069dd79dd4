"""The shared order state machine (SPEC §5, seed 000 §四 and §六), as a pure fold.

An order's state is a function of the *set* of its events: duplicates (same idempotency
key) are dropped, the rest sorted by the platform's time, ties broken by a fixed lifecycle
rank and then arrival, and folded through :data:`TRANSITIONS` by :func:`step`. The
table says what each baseline state does; the fold keeps a few facts (how far fulfilment
got, whether a cancel/refund request is pending, whether a partial refund was agreed,
whether the order was refunded in full) from which the visible order state and the
remembered state are derived, so fulfilment that happens while a request is pending
advances the remembered state and never the visible one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum

from waimai_bridge.bounds import MAX_INT64
from waimai_bridge.models import Event, KitchenStep, OrderState, PlatformState, RiderState

FULFILMENT: tuple[OrderState, ...] = (
    OrderState.PAID,
    OrderState.ACCEPTED,
    OrderState.PREPARING,
    OrderState.READY,
    OrderState.DELIVERING,
    OrderState.COMPLETED,
)
"""Fulfilment levels in the only order they can be reached: fulfilment never goes back."""


class Request(Enum):
    """What an event does to a cancel or refund request."""

    OPEN = "open"
    CLOSE = "close"
    AGREE = "agree"


@dataclass(frozen=True)
class Transition:
    """What one kind of event does to an order; ``rank`` breaks ties in platform time."""

    rank: int
    fulfilment: OrderState | None = None
    rider: RiderState | None = None
    request: Request | None = None
    refunds_all: bool = False


TRANSITIONS: Mapping[PlatformState, Transition] = {
    PlatformState.CREATED: Transition(rank=0),
    PlatformState.ACCEPTED: Transition(rank=1, fulfilment=OrderState.PAID),
    PlatformState.RIDER_AWAITING_PICKUP: Transition(
        rank=5, fulfilment=OrderState.READY, rider=RiderState.AWAITING_PICKUP
    ),
    PlatformState.RIDER_AT_STORE: Transition(
        rank=6, fulfilment=OrderState.READY, rider=RiderState.AT_STORE
    ),
    PlatformState.RIDER_DELIVERING: Transition(
        rank=7, fulfilment=OrderState.DELIVERING, rider=RiderState.DELIVERING
    ),
    PlatformState.RIDER_DELIVERED: Transition(
        rank=8, fulfilment=OrderState.DELIVERING, rider=RiderState.DELIVERED
    ),
    PlatformState.CANCEL_REQUESTED: Transition(rank=9, request=Request.OPEN),
    PlatformState.CANCEL_WITHDRAWN: Transition(rank=10, request=Request.CLOSE),
    PlatformState.CANCEL_REJECTED: Transition(rank=10, request=Request.CLOSE),
    PlatformState.CANCEL_AGREED: Transition(rank=10, request=Request.AGREE),
    PlatformState.COMPLETED: Transition(rank=11, fulfilment=OrderState.COMPLETED),
    PlatformState.REFUND_REQUESTED: Transition(rank=12, request=Request.OPEN),
    PlatformState.REFUND_WITHDRAWN: Transition(rank=13, request=Request.CLOSE),
    PlatformState.REFUND_REJECTED: Transition(rank=13, request=Request.CLOSE),
    PlatformState.REFUND_AGREED: Transition(rank=13, request=Request.AGREE),
    PlatformState.CANCELLED: Transition(rank=14, refunds_all=True),
    PlatformState.INVALIDATED: Transition(rank=14, refunds_all=True),
    PlatformState.FORCE_INVALIDATED: Transition(rank=14, refunds_all=True),
}
"""SPEC §5's table: each baseline state and what it does to the order."""

KITCHEN_TRANSITIONS: Mapping[KitchenStep, Transition] = {
    KitchenStep.ACCEPTED: Transition(rank=2, fulfilment=OrderState.ACCEPTED),
    KitchenStep.PREPARING: Transition(rank=3, fulfilment=OrderState.PREPARING),
    KitchenStep.READY: Transition(rank=4, fulfilment=OrderState.READY),
}
"""The own channel's kitchen steps: fulfilment only."""

IGNORED = Transition(rank=15)
"""An event the state machine ignores (no baseline state): kept in the log only."""


@dataclass(frozen=True)
class LogEntry:
    """One event of an order's log, as much of it as the fold reads."""

    key: str
    platform_time_ms: int
    arrival: int
    state: PlatformState | None
    kitchen_step: KitchenStep | None = None
    partial: bool = False
    refund_amount_fen: int | None = None

    @classmethod
    def of(cls, event: Event, arrival: int) -> LogEntry:
        """The log entry of a canonical event that arrived ``arrival``-th (or at that time)."""
        return cls(
            key=event.idempotency_key,
            platform_time_ms=event.platform_time_ms,
            arrival=arrival,
            state=event.state,
            kitchen_step=event.kitchen_step,
            partial=event.partial,
            refund_amount_fen=event.refund_amount_fen,
        )

    @property
    def transition(self) -> Transition:
        """What the entry does, from the tables."""
        if self.state is not None:
            return TRANSITIONS[self.state]
        if self.kitchen_step is not None:
            return KITCHEN_TRANSITIONS[self.kitchen_step]
        return IGNORED

    @property
    def fold_order(self) -> tuple[int, int, int]:
        """Platform time, then lifecycle rank, then arrival (SPEC §5)."""
        return (self.platform_time_ms, self.transition.rank, self.arrival)


@dataclass(frozen=True)
class OrderFold:
    """What the fold knows about an order after some events."""

    platform_state: PlatformState | None = None
    fulfilment: OrderState | None = None
    partially_refunded: bool = False
    refunded: bool = False
    rider_state: RiderState | None = None
    refunded_amount_fen: int = 0
    pending_request: PlatformState | None = None
    """The request (cancel or refund family) that is pending, if one is."""
    request_key: str | None = None
    """The idempotency key of the event that opened the latest request, pending or answered:
    which request an action answers."""

    @property
    def pending(self) -> bool:
        """Whether a cancel or refund request is pending."""
        return self.pending_request is not None

    @property
    def resting_state(self) -> OrderState | None:
        """Where the order stands when no request is pending: fulfilment and partial refunds."""
        if self.partially_refunded and self.fulfilment is OrderState.COMPLETED:
            return OrderState.PARTIALLY_REFUNDED
        return self.fulfilment

    @property
    def order_state(self) -> OrderState | None:
        """The visible order state (``order.state``); None until the order is accepted."""
        if self.refunded:
            return OrderState.REFUNDED
        if self.pending:
            return OrderState.REFUNDING
        return self.resting_state

    @property
    def saved_state(self) -> OrderState | None:
        """The remembered state (``waimai_order.order_state``) while a request is pending."""
        if self.pending and not self.refunded:
            return self.resting_state
        return None


def _further(current: OrderState | None, reached: OrderState | None) -> OrderState | None:
    if reached is None:
        return current
    if current is None:
        return reached
    return max(current, reached, key=FULFILMENT.index)


def step(fold: OrderFold, entry: LogEntry, *, user_paid_fen: int | None = None) -> OrderFold:
    """The order after one more event, in fold order."""
    transition = entry.transition
    request = transition.request
    agreed = request is Request.AGREE
    refunds_all = transition.refunds_all or (agreed and not entry.partial)
    amount = fold.refunded_amount_fen
    if agreed or transition.refunds_all:  # never more than the database holds
        amount = min(amount + _refund(fold, entry.refund_amount_fen, refunds_all, user_paid_fen),
                     MAX_INT64)  # fmt: skip
    return replace(
        fold,
        platform_state=entry.state if entry.state is not None else fold.platform_state,
        fulfilment=_further(fold.fulfilment, transition.fulfilment),
        rider_state=transition.rider or fold.rider_state,
        pending_request=(entry.state if request is Request.OPEN else None)
        if request is not None
        else fold.pending_request,
        request_key=entry.key if request is Request.OPEN else fold.request_key,
        partially_refunded=fold.partially_refunded or (agreed and entry.partial),
        refunded=fold.refunded or refunds_all,
        refunded_amount_fen=amount,
    )


def _refund(
    fold: OrderFold, stated: int | None, refunds_all: bool, user_paid_fen: int | None
) -> int:
    """What one refund adds: the amount the platform states, or for a full refund that
    states none, whatever of the user's payment is not refunded yet."""
    if stated is not None:
        return stated
    if refunds_all and not fold.refunded and user_paid_fen is not None:
        return max(user_paid_fen - fold.refunded_amount_fen, 0)
    return 0


def in_fold_order(entries: Iterable[LogEntry]) -> list[LogEntry]:
    """The entries without duplicates (first arrival kept), in fold order."""
    first: dict[str, LogEntry] = {}
    for entry in sorted(entries, key=lambda entry: entry.arrival):
        first.setdefault(entry.key, entry)
    return sorted(first.values(), key=lambda entry: entry.fold_order)


def fold(entries: Iterable[LogEntry], *, user_paid_fen: int | None = None) -> OrderFold:
    """The state of an order with these events, whatever their arrival order or repeats."""
    result = OrderFold()
    for entry in in_fold_order(entries):
        result = step(result, entry, user_paid_fen=user_paid_fen)
    return result


CANCELLATIONS = frozenset(
    {
        PlatformState.CANCELLED,
        PlatformState.INVALIDATED,
        PlatformState.FORCE_INVALIDATED,
        PlatformState.CANCEL_AGREED,
    }
)
"""The states that cancel an order (an agreed cancel only when it is not partial); a full
refund (33) is a sale with a refund, not a cancellation."""


def cancelled_before_completion(entries: Iterable[LogEntry]) -> bool:
    """Whether these events cancel the order before it is completed, which keeps an order
    still in its accept hold out of the order table (SPEC §5)."""
    fulfilment: OrderState | None = None
    for entry in in_fold_order(entries):
        transition = entry.transition
        if entry.state in CANCELLATIONS and (transition.refunds_all or not entry.partial):
            return fulfilment is not OrderState.COMPLETED
        fulfilment = _further(fulfilment, transition.fulfilment)
    return False
