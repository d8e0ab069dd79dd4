"""What the fake Eleme API checks of each method's parameters, and which methods it answers by
itself (:data:`METHODS`); :class:`~waimai_bridge_eleme.testing.FakeEleme` gives the answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from waimai_bridge_eleme import assumptions as facts
from waimai_bridge_eleme.fake_orders import EFFECTS

if TYPE_CHECKING:
    from waimai_bridge_eleme.fake_wire import Request
    from waimai_bridge_eleme.testing import FakeEleme

# OInvalidateType, the ``type`` of eleme.order.cancelOrderLite (platforms.md §2.3).
CANCEL_TYPES: Final = frozenset(
    {
        "others",
        "fakeOrder",
        "contactUserFailed",
        "foodSoldOut",
        "restaurantClosed",
        "distanceTooFar",
        "restaurantTooBusy",
        "forceRejectOrder",
        "deliveryFault",
        "notSatisfiedDeliveryRequirement",
    }
)


class Invalid(Exception):
    """A business parameter is missing or invalid (→ VALIDATION_FAILED)."""

    def __init__(self, param: str, problem: str) -> None:
        super().__init__(f"invalid param {param}: {problem}")
        self.param = param


def _text_param(params: Mapping[str, Any], name: str, *, empty: bool = False) -> str:
    if name not in params:
        raise Invalid(name, "missing")
    value = params[name]
    if not isinstance(value, str):
        raise Invalid(name, "must be a string")
    if not value and not empty:
        raise Invalid(name, "must not be empty")
    return value


def _order_id(params: Mapping[str, Any]) -> str:
    # Order ids exceed 2**53, so they travel as strings (platforms.md §1.1); the fake refuses
    # numbers to catch precision bugs [G: the platform may coerce them].
    return _text_param(params, "orderId")


def _confirm(fake: FakeEleme, request: Request) -> Any:
    _order_id(request.params)
    return None


def _cancel(fake: FakeEleme, request: Request) -> Any:
    params = request.params
    _order_id(params)
    if _text_param(params, "type") not in CANCEL_TYPES:
        raise Invalid("type", "not an OInvalidateType")
    # [G] The SDKs always send remark (Java sends null when absent); it may be empty.
    if "remark" not in params:
        raise Invalid("remark", "missing")
    if params["remark"] is not None and not isinstance(params["remark"], str):
        raise Invalid("remark", "must be a string")
    return None


def _agree_refund(fake: FakeEleme, request: Request) -> Any:
    _order_id(request.params)
    return None


def _disagree_refund(fake: FakeEleme, request: Request) -> Any:
    _order_id(request.params)
    _text_param(request.params, "reason")
    return None


def _get_order(fake: FakeEleme, request: Request) -> Any:
    _order_id(request.params)
    return None


def _app_request(fake: FakeEleme, request: Request, param: str) -> Mapping[str, Any]:
    """The one object parameter of a msgNew method, for the fake's app (platforms.md §1.4)."""
    if set(request.params) != {param}:
        raise Invalid(param, "must be the only parameter")
    value = request.params[param]
    if not isinstance(value, dict):
        raise Invalid(param, "must be an object")
    app_id = value.get(facts.PUSH_FAIL_QUERY_APP_ID)
    if not isinstance(app_id, int) or isinstance(app_id, bool):
        raise Invalid(f"{param}.{facts.PUSH_FAIL_QUERY_APP_ID}", "must be a number")
    if fake.app_id is not None and app_id != fake.app_id:
        raise Invalid(f"{param}.{facts.PUSH_FAIL_QUERY_APP_ID}", "is not this app's")
    return value


def _push_fail(fake: FakeEleme, request: Request) -> Any:
    _app_request(fake, request, facts.PUSH_FAIL_QUERY_PARAM)
    return None


def _confirm_pull(fake: FakeEleme, request: Request) -> Any:
    value = _app_request(fake, request, facts.CONFIRM_PARAM)
    ids = value.get(facts.CONFIRM_IDS_FIELD)
    if not isinstance(ids, list) or not ids:
        raise Invalid(f"{facts.CONFIRM_PARAM}.{facts.CONFIRM_IDS_FIELD}", "must be a list")
    return None


def _non_reached(fake: FakeEleme, request: Request) -> Any:
    app_id = request.params.get("appId")
    if not isinstance(app_id, int) or isinstance(app_id, bool):
        raise Invalid("appId", "must be a number")
    if fake.app_id is not None and app_id != fake.app_id:
        raise Invalid("appId", "is not this app's")
    return None


Method = Callable[["FakeEleme", "Request"], Any]

METHODS: Final[Mapping[str, Method]] = {
    "eleme.order.confirmOrderLite": _confirm,
    "eleme.order.cancelOrderLite": _cancel,
    "eleme.order.agreeRefundLite": _agree_refund,
    "eleme.order.disagreeRefundLite": _disagree_refund,
    "eleme.order.getOrder": _get_order,
    "eleme.msgNew.getPushFailMsg": _push_fail,
    "eleme.msgNew.confirmPullMsg": _confirm_pull,
    "eleme.message.getNonReachedOMessages": _non_reached,
}
"""Each method the fake answers by itself and the check of its parameters."""
ORDER_ACTIONS: Final = frozenset(METHODS)
"""The actions the fake answers by itself; any other action needs a scripted answer."""
ACTION_METHODS: Final = frozenset(EFFECTS)
"""The methods that act on an order (the others only read or confirm)."""
EMPTY_TOKEN_METHODS: Final = frozenset(
    {"eleme.msgNew.getPushFailMsg", "eleme.msgNew.confirmPullMsg"}
)
"""Methods of the app, not of a shop: called with an empty token ([S-E5g])."""
