"""Which outbound actions make sense in an order's state (SPEC §4.4, §7.3).

An action is asked of the platform, and the order only moves when the platform's push
says so; but an action that cannot make sense now (agreeing to a refund nobody asked for)
is refused before any platform call. The rules are a table over the order's fold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from waimai_bridge.models import Action, OrderState, PlatformState
from waimai_bridge.statemachine import OrderFold

NOT_ACCEPTED: frozenset[OrderState | None] = frozenset({None})
BEFORE_COMPLETION: frozenset[OrderState | None] = frozenset(
    {None, OrderState.PAID, OrderState.ACCEPTED, OrderState.PREPARING, OrderState.READY,
     OrderState.DELIVERING}
)  # fmt: skip
BEFORE_READY: frozenset[OrderState | None] = frozenset(
    {OrderState.PAID, OrderState.ACCEPTED, OrderState.PREPARING}
)


@dataclass(frozen=True)
class Rule:
    """When an action makes sense: how far fulfilment may have got (``fulfilment``), or
    which request must be pending (``pending``); never once the order is refunded."""

    needs: str
    fulfilment: frozenset[OrderState | None] | None = None
    pending: PlatformState | None = None

    def allows(self, fold: OrderFold) -> bool:
        """Whether the rule lets the action through for an order in ``fold``'s state."""
        if fold.refunded:
            return False
        if self.pending is not None:
            return fold.pending_request is self.pending
        return self.fulfilment is None or fold.fulfilment in self.fulfilment


RULES: Mapping[Action, Rule] = {
    Action.CONFIRM: Rule("an order not yet accepted", fulfilment=NOT_ACCEPTED),
    Action.CANCEL: Rule("an order neither completed nor refunded", BEFORE_COMPLETION),
    Action.AGREE_CANCEL: Rule("a pending cancel request", pending=PlatformState.CANCEL_REQUESTED),
    Action.REJECT_CANCEL: Rule("a pending cancel request", pending=PlatformState.CANCEL_REQUESTED),
    Action.AGREE_REFUND: Rule("a pending refund request", pending=PlatformState.REFUND_REQUESTED),
    Action.REJECT_REFUND: Rule("a pending refund request", pending=PlatformState.REFUND_REQUESTED),
    Action.MEAL_READY: Rule("an accepted order not yet ready", BEFORE_READY),
    Action.ACCEPT: Rule("a paid order", frozenset({OrderState.PAID})),
    Action.START_PREPARING: Rule(
        "an order not yet preparing", frozenset({OrderState.PAID, OrderState.ACCEPTED})
    ),
    Action.MARK_READY: Rule("an accepted order not yet ready", BEFORE_READY),
}


def allowed_actions(fold: OrderFold, supported: frozenset[Action] | set[Action]) -> list[Action]:
    """The ``supported`` actions that make sense for an order in ``fold``'s state."""
    return [action for action in Action if action in supported and RULES[action].allows(fold)]


def refusal(action: Action, fold: OrderFold) -> str | None:
    """Why ``action`` makes no sense for an order in ``fold``'s state; None when it does."""
    rule = RULES[action]
    if rule.allows(fold):
        return None
    return f"{action.value} needs {rule.needs}"
