"""``testpay``: a minimal platform plugin for the pipeline's tests (canonical JSON over HMAC).

A push is a JSON object POSTed to ``/webhooks/testpay``, signed with HMAC-SHA256 of the raw
body in the ``x-testpay-signature`` header::

    {"id": "msg-1", "shop": "100001", "order": "T-1", "code": "order.accepted",
     "time": 1716181200000, "price": {...PriceBreakdown...}, "partial": false,
     "refund_fen": 500, "day_seq": 17, "remark": "少辣"}

``"inferred": true`` marks a push whose shop is only a guess (``store_inferred``).
An empty body is the console's URL check. Code ``note.poison`` is one the plugin declares
but cannot map: the pipeline must park it, not drop it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from waimai_bridge.plugin_api import (
    BadSignature,
    InboundRequest,
    KitchenStep,
    NativeEvent,
    OrderDetails,
    ParsedPush,
    PlatformState,
    PluginConfig,
    PriceBreakdown,
    Reply,
    StateChange,
    UndecodablePush,
    UnknownStore,
    hookimpl,
)

NAME = "testpay"
CURED: set[str] = set()
"""Orders whose poison the test has "fixed", as a deploy of a fixed plugin would."""
ACK = Reply(body='{"ok":true}')
SIGNATURE_HEADER = "x-testpay-signature"

STATES: dict[str, PlatformState | KitchenStep] = {
    "order.created": PlatformState.CREATED,
    "order.accepted": PlatformState.ACCEPTED,
    "order.cancelled": PlatformState.CANCELLED,
    "order.force_invalidated": PlatformState.FORCE_INVALIDATED,
    "order.completed": PlatformState.COMPLETED,
    "kitchen.preparing": KitchenStep.PREPARING,
    "rider.at_store": PlatformState.RIDER_AT_STORE,
    "rider.delivering": PlatformState.RIDER_DELIVERING,
    "rider.delivered": PlatformState.RIDER_DELIVERED,
    "cancel.requested": PlatformState.CANCEL_REQUESTED,
    "cancel.agreed": PlatformState.CANCEL_AGREED,
    "refund.requested": PlatformState.REFUND_REQUESTED,
    "refund.rejected": PlatformState.REFUND_REJECTED,
    "refund.agreed": PlatformState.REFUND_AGREED,
}

MANIFEST: dict[str, Any] = {
    "name": NAME,
    "display_name": "Test pay",
    "version": "0.1.0",
    "contract_version": "1.5",
    "capabilities": ["parse_event", "map_state", "price_breakdown", "order_details"],
    "actions": [],
    "config_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["secret"],
        "properties": {"secret": {"type": "string", "minLength": 1, "writeOnly": True}},
    },
    "store_config_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["shop"],
        "properties": {"shop": {"type": ["string", "integer"]}},
    },
    "native_codes": [
        {
            "code": code,
            "name": code,
            "maps_to": [int(state)] if isinstance(state, PlatformState) else [],
        }
        for code, state in STATES.items()
    ]
    + [{"code": "note.poison", "name": "a payload the plugin cannot map", "maps_to": []}],
}


def sign(body: bytes, secret: str) -> str:
    """The signature of a push body."""
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@hookimpl
def plugin_manifest() -> dict[str, Any]:
    return MANIFEST


@hookimpl
def parse_event(request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
    if request.kind is not None:
        return None
    if request.method == "GET" or not request.body.strip():
        return ParsedPush(reply=ACK, events=[])
    try:
        message = request.decode_json()
    except ValueError:
        raise UndecodablePush("the body is not JSON") from None
    given = request.headers.get(SIGNATURE_HEADER, "")
    if not hmac.compare_digest(sign(request.body, config.settings["secret"]), given):
        raise BadSignature("missing or wrong signature", reply=Reply(body='{"ok":false}'))
    if not isinstance(message, dict) or not {"id", "shop", "order", "code", "time"} <= set(message):
        raise UndecodablePush("a push needs id, shop, order, code and time")
    store = config.store_for("shop", message["shop"])
    if store is None:
        raise UnknownStore(f"no store is bound to shop {message['shop']!r}")
    event = NativeEvent(
        platform=NAME,
        store_id=store,
        store_inferred=bool(message.get("inferred", False)),
        platform_order_id=str(message["order"]),
        native_code=str(message["code"]),
        idempotency_key=str(message["id"]),
        platform_time_ms=int(message["time"]),
        payload=message,
    )
    return ParsedPush(reply=ACK, events=[event])


@hookimpl
def map_state(event: NativeEvent) -> StateChange:
    if event.native_code == "note.poison" and event.platform_order_id not in CURED:
        raise ValueError("testpay cannot map this payload")
    state = STATES.get(event.native_code)
    if state is None:
        return StateChange(state=None)
    if isinstance(state, KitchenStep):
        return StateChange(state=None, kitchen_step=state)
    return StateChange(
        state=state,
        partial=bool(event.payload.get("partial", False)),
        refund_amount_fen=event.payload.get("refund_fen"),
    )


@hookimpl
def price_breakdown(order: NativeEvent) -> PriceBreakdown | None:
    price = order.payload.get("price")
    return None if price is None else PriceBreakdown.model_validate(price)


@hookimpl
def order_details(order: NativeEvent) -> OrderDetails | None:
    """``day_seq`` and ``remark`` as the push states them; None when it states neither."""
    if "day_seq" not in order.payload and "remark" not in order.payload:
        return None
    return OrderDetails.model_validate(
        {key: order.payload.get(key) for key in ("day_seq", "remark")}
    )


def push(
    message_id: str, order: str, code: str, time_ms: int, *, shop: str = "100001", **extra: Any
) -> bytes:
    """The body of a push."""
    return json.dumps(
        {"id": message_id, "shop": shop, "order": order, "code": code, "time": time_ms, **extra}
    ).encode()
