"""One Eleme order read back (``eleme.order.getOrder``): fetched as events, or compared with
what an action should have done to it.

``getOrder`` answers the OOrder, the very structure of a type-10 message (platforms.md §1.6),
with the order's ``status`` and ``refundStatus`` as they are now. A fetch gives two events:

- the full order, as native code 10 with the OOrder as its payload (what ``price_breakdown``
  reads, as for a type-10 push);
- the order's current baseline state, by :data:`.assumptions.ORDER_STATUS_CODES` (12, 18 or
  15; none while it waits to be accepted), shaped as that type's status message.

Their keys cannot be the pushes' (``requestId`` is not in the OOrder), so they are
``fetch:<type>:<order id>``: one per order and state, whatever the number of fetches. Only
states that carry no money and open no request are fetched, so the event folded beside its
pushed twin changes nothing: no cancel or refund request or answer (whose amount would
count twice), which come by push or pull.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from waimai_bridge.plugin_api import (
    MAX_ID_LENGTH,
    MAX_INT64,
    UNREADABLE,
    Action,
    ActionOutcome,
    ActionRequest,
    ActionResult,
    FetchedOrder,
    NativeEvent,
    OrderRef,
    PlatformError,
    PluginConfig,
    TransientPlatformError,
    describe,
)
from waimai_bridge_eleme import api, messages
from waimai_bridge_eleme import assumptions as facts
from waimai_bridge_eleme.prices import breakdown
from waimai_bridge_eleme.push import PLATFORM

logger = logging.getLogger(__name__)

GET_ORDER = "eleme.order.getOrder"
ORDER_CODE = "10"
FETCH_KEY = "fetch:{code}:{order}"
"""The idempotency key of a fetched event."""
CHINA = dt.timezone(dt.timedelta(hours=8))
"""The zone of the OOrder's local times (``createdAt``, ``activeAt``: GMT+8, §1.6)."""


class NotFound(Exception):
    """Eleme does not know the order (:data:`.assumptions.ORDER_NOT_FOUND`)."""


def get_order(store_id: str, order_id: str, config: PluginConfig) -> dict[str, Any]:
    """The OOrder as Eleme has it now.

    :raises NotFound: Eleme does not know the order, or it is not of the store's shop.
    :raises PlatformError: no answer, or any other error.
    """
    binding = config.stores.get(store_id, {})
    token = api.store_token(store_id, config)
    if not token:
        raise TransientPlatformError(f"store {store_id!r} has no Eleme token", code="NO_TOKEN")
    if order_id.startswith(facts.SHOP_MESSAGE_ORDER_PREFIX):
        raise NotFound  # the pseudo order of a shop's messages
    try:
        order = api.read(GET_ORDER, {"orderId": order_id}, config, token=token)
    except PlatformError as exc:
        if exc.code == facts.ORDER_NOT_FOUND:
            raise NotFound from None
        raise
    if order is None:
        raise NotFound
    if not isinstance(order, dict):
        raise TransientPlatformError(f"{GET_ORDER} answered no order", code="ANSWER")
    shop = order.get("shopId")
    if shop is not None and str(shop) != str(binding.get("shop_id")):
        raise NotFound  # another shop's order: not the store's
    return order


def fetch(ref: OrderRef, config: PluginConfig) -> FetchedOrder | None:
    """The order as events: its full order and its current state (see the module).

    :raises TransientPlatformError: not read, or read as something that is not an order.
    """
    try:
        order = get_order(ref.store_id, ref.platform_order_id, config)
    except NotFound:
        return None
    except PlatformError as exc:
        raise TransientPlatformError(exc.message, code=exc.code) from None
    events = [
        event
        for event in (_full_order(ref, order), _state(ref, order, config))
        if event is not None
    ]
    if not events:
        raise TransientPlatformError(
            f"{GET_ORDER} answered an order with neither its items nor a known status",
            code="ANSWER",
        )
    return FetchedOrder(events=events)


def _full_order(ref: OrderRef, order: dict[str, Any]) -> NativeEvent | None:
    """The type-10 event of the OOrder; None (logged) when it lacks what a type-10 push must
    hold, as a push lacking it would be refused."""
    missing = messages.missing_fields(messages.Kind.ORDER, order)
    try:
        if missing:
            raise ValueError(f"it lacks {', '.join(missing)}")
        breakdown(order)
        return NativeEvent(
            platform=PLATFORM,
            store_id=ref.store_id,
            platform_order_id=ref.platform_order_id,
            native_code=ORDER_CODE,
            idempotency_key=FETCH_KEY.format(code=ORDER_CODE, order=ref.platform_order_id),
            platform_time_ms=_local_ms(order.get("activeAt") or order.get("createdAt")),
            payload=order,
        )
    except UNREADABLE as exc:
        logger.warning("eleme fetch: order of store %s without its full order: %s",
                       ref.store_id, describe(exc))  # fmt: skip
        return None


def _state(ref: OrderRef, order: dict[str, Any], config: PluginConfig) -> NativeEvent | None:
    """The event of the order's current baseline state, timed now; None while it waits."""
    status = order.get("status")
    code = facts.ORDER_STATUS_CODES.get(status) if isinstance(status, str) else None
    if code is None:
        return None
    now_s = int(time.time())
    return NativeEvent(
        platform=PLATFORM,
        store_id=ref.store_id,
        platform_order_id=ref.platform_order_id,
        native_code=code,
        idempotency_key=FETCH_KEY.format(code=code, order=ref.platform_order_id),
        platform_time_ms=now_s * 1000,
        payload={
            "orderId": ref.platform_order_id,
            "state": status,
            "shopId": _number(config.stores[ref.store_id].get("shop_id")),
            "updateTime": now_s,
        },
    )


def _local_ms(text: Any) -> int:
    """An OOrder local time (``2018-06-05T06:09:10``, GMT+8) in epoch ms; now if unreadable."""
    if isinstance(text, str):
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            moment = None
        if moment is not None:
            ms = int((moment if moment.tzinfo else moment.replace(tzinfo=CHINA)).timestamp() * 1000)
            if 0 < ms <= MAX_INT64:
                return ms
    return int(time.time() * 1000)


def _number(value: Any) -> Any:
    """A shop id as a status message carries it: a number when it is digits."""
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() else value


# --------------------------------------------------------------------------- verify


@dataclass(frozen=True)
class Target:
    """What an action does to the order: the OOrder field it changes, the values that show
    it took effect (``done``) and those where it still can (``open``). Every other value of
    the enum says it no longer can."""

    field: str
    done: frozenset[str]
    open: frozenset[str]
    known: frozenset[str]


ORDER_STATUSES = frozenset(facts.ORDER_STATUS_CODES)
REQUEST_STATUSES = frozenset(
    {"noRefund", "applied", "rejected", "arbitrating", "failed", "successful"}
)
"""OOrderRefundStatus (confirmed, [S-E1f])."""
_OPEN_REQUEST = frozenset({"applied", "arbitrating"})
_AGREED = facts.REQUEST_STATUS_AFTER["agreed"]
_REJECTED = facts.REQUEST_STATUS_AFTER["rejected"]

_AGREEING = Target("refundStatus", frozenset({_AGREED}), _OPEN_REQUEST, REQUEST_STATUSES)
_REJECTING = Target("refundStatus", frozenset({_REJECTED}), _OPEN_REQUEST, REQUEST_STATUSES)
TARGETS: Mapping[Action, Target] = {
    Action.CONFIRM: Target(
        "status",
        frozenset({"valid", "refunding", "settled"}),
        frozenset({"pending", "unprocessed"}),
        ORDER_STATUSES,
    ),
    Action.CANCEL: Target(
        "status",
        frozenset({"invalid"}),
        frozenset({"pending", "unprocessed", "valid", "refunding"}),
        ORDER_STATUSES,
    ),
    Action.AGREE_CANCEL: _AGREEING,
    Action.AGREE_REFUND: _AGREEING,
    Action.REJECT_CANCEL: _REJECTING,
    Action.REJECT_REFUND: _REJECTING,
}
"""Each supported action's mark on the OOrder."""


def verify(action: ActionRequest, config: PluginConfig) -> ActionResult:
    """Whether ``action`` took effect, by the order as ``getOrder`` answers it now: done,
    transient (it did not, and still can), rejected (it no longer can, or Eleme does not know
    the order) or unknown (the order could not be read)."""
    target = TARGETS.get(action.action)
    if target is None:
        return _result(ActionOutcome.REJECTED, "UNSUPPORTED", "Eleme has no API for it")
    try:
        order = get_order(action.store_id, action.platform_order_id, config)
    except NotFound:
        return _result(
            ActionOutcome.REJECTED, facts.ORDER_NOT_FOUND, "Eleme does not know the order"
        )
    except PlatformError as exc:
        return _result(
            ActionOutcome.UNKNOWN, exc.code or "UNKNOWN", f"reading the order: {exc.message}"
        )
    value = order.get(target.field)
    shown = value if isinstance(value, str) and value in target.known else None
    if shown is None:
        return _result(
            ActionOutcome.UNKNOWN, "ANSWER", f"the order's {target.field} is not one Eleme sends"
        )
    said = f"the order's {target.field} on Eleme is {shown!r}"
    if shown in target.done:
        return _result(ActionOutcome.DONE, shown, said)
    if shown in target.open:
        return _result(ActionOutcome.TRANSIENT, shown, said)
    return _result(ActionOutcome.REJECTED, shown, said)


def _result(outcome: ActionOutcome, code: str, message: str) -> ActionResult:
    return ActionResult(outcome=outcome, code=code[:MAX_ID_LENGTH], message=message)
