"""The hooks of the generic JSON-over-HMAC platform (see the README for the protocol).

A push is one JSON message ``{"id", "type", "shop_id", "order_id", "time_ms", "data"}``
whose ``type`` is a native code of ``manifest.json``; money in ``data`` is integer fen.
"""

from __future__ import annotations

import json
from typing import Any

from waimai_bridge.plugin_api import (
    UNREADABLE,
    ActionRequest,
    ActionResult,
    BadSignature,
    InboundRequest,
    NativeEvent,
    ParsedPush,
    PluginConfig,
    PriceBreakdown,
    PriceItem,
    RefundedItem,
    Reply,
    StateChange,
    UndecodablePush,
    UnknownStore,
    describe,
    hookimpl,
    read_manifest,
)
from waimai_bridge_jsonhmac import api
from waimai_bridge_jsonhmac.protocol import (
    ACK,
    APP_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)

MANIFEST = read_manifest(__package__, "waimai-bridge-jsonhmac")
STATES: dict[str, list[int]] = {row["code"]: row["maps_to"] for row in MANIFEST["native_codes"]}
REQUESTS = {"cancel.requested", "cancel.agreed", "refund.requested", "refund.agreed"}
"""The codes whose ``data`` says what is asked or given back."""


def _refused(error: type[BadSignature | UndecodablePush | UnknownStore], message: str) -> Exception:
    body = json.dumps({"ok": False, "error": message}, ensure_ascii=False, separators=(",", ":"))
    return error(message, reply=Reply(body=body))


@hookimpl
def plugin_manifest() -> dict[str, Any]:
    """The manifest: config schemas and the native-code table, as data."""
    return dict(MANIFEST)


@hookimpl
def parse_event(request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
    """Verify a push's app id and HMAC signature, then decode its message."""
    if request.kind is not None:
        return None
    if request.method == "GET" or not request.body:
        return ParsedPush(reply=Reply(body=ACK), events=[])
    headers = request.headers
    if headers.get(APP_HEADER) != str(config.settings["app_id"]):
        raise _refused(BadSignature, f"unknown app {headers.get(APP_HEADER)!r}")
    stamp, given = headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER)
    if not stamp or not given:
        raise _refused(BadSignature, "the push has no timestamp or signature header")
    if not verify(str(config.settings["app_secret"]), stamp, request.body, given):
        raise _refused(BadSignature, "the signature does not match")
    try:
        message = request.decode_json()
        code, shop = str(message["type"]), str(message["shop_id"])
        event_id, time_ms = str(message["id"]), int(message["time_ms"])
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        raise _refused(
            UndecodablePush, f"not a message of this platform: {describe(exc)}"
        ) from None
    if code not in STATES:
        raise _refused(UndecodablePush, f"unknown message type {code[:40]!r}")
    store = config.store_for("shop_id", shop)
    if store is None:
        raise _refused(UnknownStore, f"no store is bound to shop_id {shop[:40]}")
    order = message.get("order_id") or f"shop:{shop}"
    try:  # a value no contract field holds (a long id, a time that is not epoch ms) is refused
        event = NativeEvent(
            platform="jsonhmac",
            store_id=store,
            platform_order_id=str(order),
            native_code=code,
            idempotency_key=event_id,
            platform_time_ms=time_ms,
            payload=message,
        )
    except UNREADABLE as exc:
        raise _refused(
            UndecodablePush, f"not a message of this platform: {describe(exc)}"
        ) from None
    return ParsedPush(reply=Reply(body=ACK), events=[event])


@hookimpl
def map_state(event: NativeEvent) -> StateChange:
    """The baseline state from the table; a cancel before or after acceptance; the money of
    cancel and refund messages."""
    code = event.native_code
    data: dict[str, Any] = event.payload.get("data") or {}
    states = STATES[code]
    if code == "order.cancelled":
        return StateChange(
            state=17 if data.get("after_acceptance") else 14, reason=data.get("reason")
        )
    if not states:
        return StateChange(state=None)
    if code not in REQUESTS:
        return StateChange(state=states[0])
    items = [
        RefundedItem(
            name=item["name"],
            quantity=item["quantity"],
            sku_code=item.get("sku"),
            amount_fen=item.get("amount"),
        )
        for item in data.get("items", [])
    ]
    return StateChange(
        state=states[0],
        partial=bool(data.get("partial")),
        refund_amount_fen=data.get("amount"),
        refunded_items=items,
        reason=data.get("reason"),
    )


@hookimpl
def price_breakdown(order: NativeEvent) -> PriceBreakdown | None:
    """The price of a new order, as stated (every figure in fen)."""
    if order.native_code != "order.created":
        return None
    data = order.payload["data"]
    amounts = data["amounts"]
    items = [
        PriceItem(
            sku_code=item.get("sku"),
            platform_sku_id=item.get("item_id"),
            name=item["name"],
            quantity=item["quantity"],
            unit_original=item["unit_price"],
            unit_paid=item["unit_paid"],
        )
        for item in data["items"]
    ]
    return PriceBreakdown(
        items=items,
        original_amount=amounts["original"],
        packaging_fee=amounts["packaging"],
        delivery_fee=amounts["delivery"],
        merchant_discount=amounts["merchant_discount"],
        platform_discount=amounts["platform_discount"],
        user_paid=amounts["paid"],
        commission=amounts.get("commission"),
        merchant_income=amounts.get("income"),
    )


@hookimpl
def outbound_action(action: ActionRequest, config: PluginConfig) -> ActionResult:
    """Perform an action through the platform's API."""
    return api.perform(action, config)
