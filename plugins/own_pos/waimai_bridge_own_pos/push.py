"""own_pos pushes in: signature and replay window checked, the message decoded, one event out.

The POS POSTs one JSON message per push to ``/webhooks/own_pos`` (the README documents the
format)::

    {"message_id": "POS-001-000123", "store_code": "POS-001", "order_id": "OWN-0001",
     "event": "order.accepted", "event_time_ms": 1716181230000}

and gets ``{"ok":true}`` back — also for a GET or an empty POST (a URL check), and for a
message it sent before. A refused push gets the bridge's ``{"error": "<why>"}`` with 400
or 401, and nothing is written.
"""

from __future__ import annotations

from typing import Any

from waimai_bridge.plugin_api import (
    MAX_ID_LENGTH,
    MAX_KEY_LENGTH,
    UNREADABLE,
    InboundRequest,
    NativeEvent,
    ParsedPush,
    PluginConfig,
    Reply,
    UndecodablePush,
    UnknownStore,
    decode_json,
    describe,
)
from waimai_bridge_own_pos import prices, signing, states
from waimai_bridge_own_pos.fields import Fields, Malformed

PLATFORM = "own_pos"
ACK = Reply(body='{"ok":true}')


def parse(request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
    """The push in ``request`` as one native event, or the ACK alone for a URL check.

    None when the request is not for own_pos's single push URL (it has a ``kind``).
    """
    if request.kind is not None:
        return None
    if request.method == "GET" or not request.body.strip():
        return ParsedPush(reply=ACK, events=[])
    signing.verify(
        request,
        secret=config.settings["secret"],
        max_skew_seconds=config.settings.get("max_skew_seconds", signing.DEFAULT_MAX_SKEW_SECONDS),
    )
    try:
        event = _event(_decode(request.body), config)
        # refuse now what the worker could not map or price later
        states.state_change(event)
        if event.native_code == prices.ORDER_EVENT:
            prices.breakdown(event.payload)
    except Malformed as exc:
        raise UndecodablePush(f"the push's {exc}") from None
    except UNREADABLE as exc:  # a bound of the contracts that no field check above knew
        raise UndecodablePush(f"the push: {describe(exc)}") from None
    return ParsedPush(reply=ACK, events=[event])


def store_of(store_code: str, config: PluginConfig) -> str | None:
    """The chain's store the POS means by ``store_code``.

    A store whose ``own_pos`` table sets ``pos_store_code`` is known by that code; one
    whose table does not is known by its own store id. A store without an ``own_pos``
    table does not sell through the own channel.
    """
    store = config.store_for("pos_store_code", store_code)
    if store is not None:
        return store
    binding = config.stores.get(store_code)
    if binding is not None and "pos_store_code" not in binding:
        return store_code
    return None


def _decode(body: bytes) -> dict[str, Any]:
    try:
        message = decode_json(body)
    except ValueError as exc:
        raise UndecodablePush(f"the push's body is not UTF-8 JSON: {exc}") from None
    if not isinstance(message, dict):
        raise UndecodablePush("the push's body is not a JSON object")
    return message


def _event(message: dict[str, Any], config: PluginConfig) -> NativeEvent:
    fields = Fields.of(message)
    event = fields.text("event", max_length=MAX_ID_LENGTH)
    if event not in states.table():
        raise Malformed("event", f"{event!r} is not an own_pos event ({', '.join(states.table())})")
    store_code = fields.identifier("store_code", max_length=MAX_ID_LENGTH)
    store = store_of(store_code, config)
    if store is None:
        raise UnknownStore(f"no store takes own_pos pushes with store_code {store_code!r}")
    return NativeEvent(
        platform=PLATFORM,
        store_id=store,
        platform_order_id=fields.identifier("order_id", max_length=MAX_ID_LENGTH),
        native_code=event,
        idempotency_key=fields.text("message_id", max_length=MAX_KEY_LENGTH),
        platform_time_ms=fields.epoch_ms("event_time_ms"),
        payload=message,
    )
