"""Which outbound actions make sense in an order's state (SPEC §4.4, §7.3).

An action is asked of the platform, and the order only moves when the platform's push
says so; but an action that cannot make sense now (agreeing to a refund nobody asked for)
is refused before any platform call. The rules are a table over the order's fold; which
pending request an answering action answers is the plugin's declaration
(``Manifest.answers``) over the defaults of the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
CANCEL_REQUEST = frozenset({PlatformState.CANCEL_REQUESTED})
REFUND_REQUEST = frozenset({PlatformState.REFUND_REQUESTED})

REQUEST_NAMES: Mapping[PlatformState, str] = {
    PlatformState.CANCEL_REQUESTED: "cancel",
    PlatformState.REFUND_REQUESTED: "refund",
}
"""The requests an action can answer, by the state that opens them."""

Answers = Mapping[Action, frozenset[PlatformState]]
"""Which pending requests each answering action answers, for one platform."""


@dataclass(frozen=True)
class Rule:
    """When an action makes sense: how far fulfilment may have got (``fulfilment``), or,
    for an action that answers a request, which pending request it answers by default
    (``answers``); never once the order is refunded."""

    needs: str = ""
    fulfilment: frozenset[OrderState | None] | None = None
    answers: frozenset[PlatformState] = frozenset()


RULES: Mapping[Action, Rule] = {
    Action.CONFIRM: Rule("an order not yet accepted", fulfilment=NOT_ACCEPTED),
    Action.CANCEL: Rule("an order neither completed nor refunded", BEFORE_COMPLETION),
    Action.AGREE_CANCEL: Rule(answers=CANCEL_REQUEST),
    Action.REJECT_CANCEL: Rule(answers=CANCEL_REQUEST),
    Action.AGREE_REFUND: Rule(answers=REFUND_REQUEST),
    Action.REJECT_REFUND: Rule(answers=REFUND_REQUEST),
    Action.MEAL_READY: Rule("an accepted order not yet ready", BEFORE_READY),
    Action.ACCEPT: Rule("a paid order", frozenset({OrderState.PAID})),
    Action.START_PREPARING: Rule(
        "an order not yet preparing", frozenset({OrderState.PAID, OrderState.ACCEPTED})
    ),
    Action.MARK_READY: Rule("an accepted order not yet ready", BEFORE_READY),
}

DEFAULT_ANSWERS: Answers = {action: rule.answers for action, rule in RULES.items() if rule.answers}
"""Which request each answering action answers when the plugin declares nothing."""


def answers_request(action: Action) -> bool:
    """Whether ``action`` answers a cancel or refund request (rather than acting on the order)."""
    return action in DEFAULT_ANSWERS


def declared_answers(declared: Mapping[Any, Sequence[PlatformState]]) -> Answers:
    """A plugin's ``Manifest.answers`` (action → requests) over the defaults: every
    answering action's requests."""
    return {
        action: frozenset(declared.get(action, default))
        for action, default in DEFAULT_ANSWERS.items()
    }


def _allows(action: Action, fold: OrderFold, answers: Answers) -> bool:
    if fold.refunded:
        return False
    if answers_request(action):
        return fold.pending_request in answers.get(action, DEFAULT_ANSWERS[action])
    fulfilment = RULES[action].fulfilment
    return fulfilment is None or fold.fulfilment in fulfilment


def _needs(action: Action, answers: Answers) -> str:
    if not answers_request(action):
        return RULES[action].needs
    requests = sorted(answers.get(action, DEFAULT_ANSWERS[action]))
    return f"a pending {' or '.join(REQUEST_NAMES[state] for state in requests)} request"


def allowed_actions(
    fold: OrderFold, supported: frozenset[Action] | set[Action], answers: Answers = DEFAULT_ANSWERS
) -> list[Action]:
    """The ``supported`` actions that make sense for an order in ``fold``'s state."""
    return [action for action in Action if action in supported and _allows(action, fold, answers)]


def refusal(action: Action, fold: OrderFold, answers: Answers = DEFAULT_ANSWERS) -> str | None:
    """Why ``action`` makes no sense for an order in ``fold``'s state; None when it does."""
    if _allows(action, fold, answers):
        return None
    return f"{action.value} needs {_needs(action, answers)}"
