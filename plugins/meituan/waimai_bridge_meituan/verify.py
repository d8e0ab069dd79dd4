"""Settling an action whose answer was lost by reading the order on Meituan (``verify_action``).

An order action is read from ``order/viewstatus``: the order's status, as the order push
that brings an order there (``assumptions.ORDER_STATUS_CODES``), against
:data:`ORDER_OUTCOMES`. A refund or cancel answer is read from the order's latest refund
application (``getOrderRefundDetail``, its ``res_type`` as the refund push's
``notify_type``) against :data:`REFUND_OUTCOMES`. What neither table names is ``transient``:
the order shows the action has not taken effect, and calling again is safe, since a repeat
of an action that did take effect is answered "already" (``assumptions.ALREADY_*``, done).
No read shows 出餐完成: ``meal_ready`` on an order the read shows confirmed and open is
settled by sending it again, whose answer is the outcome
(``assumptions.MEAL_READY_REPEATS_HARMLESSLY``). A read that fails is ``unknown``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from waimai_bridge.plugin_api import (
    Action,
    ActionOutcome,
    ActionRequest,
    ActionResult,
    PluginConfig,
    TransientPlatformError,
)
from waimai_bridge_meituan import api, reads
from waimai_bridge_meituan import assumptions as facts

DONE: Final = ActionOutcome.DONE
REJECTED: Final = ActionOutcome.REJECTED

ORDER_OUTCOMES: Final[dict[Action, dict[str, ActionOutcome]]] = {
    Action.CONFIRM: {"order_confirmed": DONE, "order_completed": DONE, "order_cancelled": REJECTED},
    Action.CANCEL: {"order_cancelled": DONE, "order_completed": REJECTED},
    Action.MEAL_READY: {"order_completed": REJECTED, "order_cancelled": REJECTED},
}
"""An order action and the order's status it is read against: done where the status shows
it took effect, rejected where it no longer can."""

SENT_AGAIN: Final[dict[Action, str]] = {Action.MEAL_READY: "order_confirmed"}
"""An action no read shows, and the status in which it is settled by sending it again."""

_AGREED: Final = {"agree": DONE, "reject": REJECTED}
_REJECTED: Final = {"reject": DONE, "agree": REJECTED}
_WITHDRAWN: Final = {"cancelRefund": REJECTED, "cancelRefundComplaint": REJECTED}

REFUND_OUTCOMES: Final[dict[Action, dict[str, ActionOutcome]]] = {
    Action.AGREE_REFUND: {**_AGREED, **_WITHDRAWN},
    Action.AGREE_CANCEL: {**_AGREED, **_WITHDRAWN},
    Action.REJECT_REFUND: {**_REJECTED, **_WITHDRAWN},
    Action.REJECT_CANCEL: {**_REJECTED, **_WITHDRAWN},
}
"""A refund or cancel answer and the latest application's state (a refund push's
``notify_type``): done where it was answered so, rejected where it was answered otherwise
or withdrawn; an application still open (``apply``) is transient."""


def verify(
    action: ActionRequest, config: PluginConfig, *, clock: Callable[[], float] = time.time
) -> ActionResult:
    """What the order on Meituan says of ``action``: done, transient (call again), rejected,
    or unknown when it cannot be read."""
    order_id, store_id = action.platform_order_id, action.store_id
    try:
        if action.action in REFUND_OUTCOMES:
            applications = (
                reads.refund_applications(order_id, config, store_id=store_id, clock=clock) or []
            )
            state = latest_state(applications)
            seen = (
                f"the latest refund application is {state or 'of an unknown state'}"
                if applications
                else "the order has no refund application"
            )
            return _result(REFUND_OUTCOMES[action.action].get(state or ""), seen)
        status = reads.order_status(order_id, config, store_id=store_id, clock=clock)
    except TransientPlatformError as exc:
        return ActionResult(outcome=ActionOutcome.UNKNOWN, code=exc.code, message=exc.message)
    code = facts.ORDER_STATUS_CODES.get(status or "", "")
    if facts.MEAL_READY_REPEATS_HARMLESSLY and SENT_AGAIN.get(action.action) == code:
        return api.perform(action, config, clock=clock)
    seen = "Meituan knows no such order" if status is None else f"the order's status is {status}"
    return _result(ORDER_OUTCOMES.get(action.action, {}).get(code), seen)


def latest_state(applications: Sequence[Mapping[str, Any]]) -> str | None:
    """The state of the latest refund application (by ``ctime``, then by place in the
    list), as the refund push's ``notify_type``; None when there is none or it states none
    known."""
    if not applications:
        return None
    latest = max(
        enumerate(applications), key=lambda pair: (_seconds(pair[1].get("ctime")), pair[0])
    )[1]
    return facts.NOTIFY_TYPE_BY_RES_TYPE.get(str(latest.get("res_type", "")).strip())


def _result(outcome: ActionOutcome | None, seen: str) -> ActionResult:
    if outcome is DONE:
        return ActionResult(outcome=DONE)
    if outcome is None:
        return ActionResult(
            outcome=ActionOutcome.TRANSIENT, message=f"not taken effect on Meituan: {seen}"
        )
    return ActionResult(outcome=outcome, message=f"can no longer take effect on Meituan: {seen}")


def _seconds(value: object) -> int:
    text = "" if value is None else str(value).strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 19 else 0
