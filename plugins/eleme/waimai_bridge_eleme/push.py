"""Eleme pushes in: the envelope verified, the ``message`` decoded, one native event out (or,
for a shop withdrawing the app's authorization, a notice about the store's channel).

Eleme POSTs every push to one URL as a compact JSON envelope (platforms.md §1.1)::

    {"requestId": "…", "type": 12, "appId": 58137347, "message": "{\\"orderId\\": …}",
     "shopId": 160012345, "timestamp": 1716181200123, "userId": 249698004053764774,
     "signature": "…"}

and expects ``{"message":"ok"}`` back, also for the console's URL check (§1.3). A pull
(:mod:`.pull`) brings the same envelopes: :func:`read_envelope` reads both, so a pulled
message and its push are one event with one key.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from waimai_bridge.plugin_api import (
    MAX_INT64,
    MAX_KEY_LENGTH,
    UNREADABLE,
    BadSignature,
    ChannelNotice,
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
from waimai_bridge_eleme import messages
from waimai_bridge_eleme.assumptions import SHOP_MESSAGE_ORDER_PREFIX
from waimai_bridge_eleme.prices import breakdown
from waimai_bridge_eleme.signing import push_signature
from waimai_bridge_eleme.states import state_change

PLATFORM = "eleme"
ACK = Reply(body='{"message":"ok"}')
DEAUTHORIZED = "100"
"""The push ``type`` of a shop withdrawing the app's authorization (授权状态变更, §1.5): a
notice that the store's channel is unauthorized, not an event of an order."""
ENVELOPE_KEYS = ("requestId", "type", "appId", "message", "shopId", "timestamp", "signature")
PULLED_KEYS = tuple(key for key in ENVELOPE_KEYS if key != "signature")


def parse(request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
    """The push in ``request`` as a native event, or the ACK alone for a URL check; a
    de-authorization (type 100) as a notice that the store's channel is unauthorized.

    None when the request is not for Eleme's single push URL (it has a ``kind``).
    """
    if request.kind is not None:
        return None
    if request.method == "GET" or not request.body.strip():
        return ParsedPush(reply=ACK, events=[])
    envelope = _envelope(request)
    if not envelope:
        return ParsedPush(reply=ACK, events=[])
    _verify(envelope, config)
    missing = [key for key in ENVELOPE_KEYS if key not in envelope]
    if missing:
        raise _undecodable(f"the push envelope lacks {', '.join(missing)}")
    event = read_envelope(envelope, config)
    if event.native_code == DEAUTHORIZED:
        notice = ChannelNotice(store_id=event.store_id, authorized=False)
        return ParsedPush(reply=ACK, events=[], notices=[notice])
    return ParsedPush(reply=ACK, events=[event])


def read_pulled(message: Any, config: PluginConfig) -> NativeEvent:
    """A message a pull brought, the push envelope as a push's body holds it, as the event
    its push gives. Its signature is not checked: it came in the answer of a signed API call.

    :raises UndecodablePush: not an envelope of this app, or unreadable as a push is.
    :raises UnknownStore: its shop is bound to no store.
    """
    if not isinstance(message, dict):
        raise _undecodable("a pulled message is not a JSON object")
    missing = [key for key in PULLED_KEYS if key not in message]
    if missing:
        raise _undecodable(f"the pulled message lacks {', '.join(missing)}")
    if str(message["appId"]) != str(config.settings["app_id"]):
        raise _undecodable(f"the pulled message is for appId {_shown(message['appId'])}")
    return read_envelope(message, config)


def refusal(message: str) -> Reply:
    """Eleme's answer shape for a refused push; the status comes from the exception."""
    return Reply(body=json.dumps({"message": message}, ensure_ascii=False))


def _envelope(request: InboundRequest) -> dict[str, Any]:
    try:
        envelope = request.decode_json()
    except ValueError as exc:
        raise _undecodable(f"the body is not JSON: {describe(exc)}") from None
    if not isinstance(envelope, dict):
        raise _undecodable("the body is not a JSON object")
    return envelope


def _verify(envelope: dict[str, Any], config: PluginConfig) -> None:
    given = envelope.get("signature")
    if not isinstance(given, str) or not given:
        message = "the push has no signature"
        raise BadSignature(message, reply=refusal(message))
    expected = push_signature(envelope, config.settings["app_secret"])
    if not hmac.compare_digest(expected.encode(), given.upper().encode()):
        message = "the push signature does not verify"
        raise BadSignature(message, reply=refusal(message))
    app_id = envelope.get("appId")
    if app_id is None:
        message = "the push has no appId"
        raise BadSignature(message, reply=refusal(message))
    if str(app_id) != str(config.settings["app_id"]):
        message = f"the push is for appId {_shown(app_id)}, not this bridge's app"
        raise BadSignature(message, reply=refusal(message))


def read_envelope(envelope: dict[str, Any], config: PluginConfig) -> NativeEvent:
    """The native event of a push envelope whose signature holds (or that a pull brought):
    the store from ``shopId``, the key from ``requestId``, the decoded ``message``.

    :raises UndecodablePush: a type, time, message or id no push of Eleme's has.
    :raises UnknownStore: the shop is bound to no store.
    """
    push_type = envelope["type"]
    if isinstance(push_type, str) and _digits(push_type):  # one doc example sends "30"
        push_type = int(push_type)
    kind = messages.kind_of(push_type) if isinstance(push_type, int) else None
    if kind is None:
        raise _undecodable(f"type {_shown(push_type)} is not a push type Eleme sends")
    envelope_ms = envelope["timestamp"]
    if not isinstance(envelope_ms, int) or isinstance(envelope_ms, bool):
        raise _undecodable("timestamp is not a time in milliseconds")
    if not 0 < envelope_ms <= MAX_INT64:
        raise _undecodable("timestamp is not a time in milliseconds")
    message = _message(envelope["message"], push_type)
    missing = messages.missing_fields(kind, message)
    if missing:
        raise _undecodable(f"the type {push_type} message lacks {', '.join(missing)}")
    if kind is messages.Kind.ORDER:
        try:
            breakdown(message)
        except UNREADABLE as exc:
            raise _undecodable(f"the type {push_type} order's prices: {describe(exc)}") from None
    shop_id = _shop_id(envelope["shopId"])
    store = config.store_for("shop_id", shop_id)
    if store is None:
        message_text = f"no store is bound to Eleme shopId {shop_id}"
        raise UnknownStore(message_text, reply=refusal(message_text))
    shop_order = f"{SHOP_MESSAGE_ORDER_PREFIX}{shop_id}"
    try:  # refuse now what the inbox cannot hold or the worker could not map later
        event = NativeEvent(
            platform=PLATFORM,
            store_id=store,
            platform_order_id=messages.order_id(kind, message) or shop_order,
            native_code=str(push_type),
            idempotency_key=_request_id(envelope["requestId"]),
            platform_time_ms=messages.change_time_ms(message, envelope_ms),
            payload=message,
        )
        state_change(event)
    except UNREADABLE as exc:
        raise _undecodable(f"the type {push_type} push: {describe(exc)}") from None
    return event


def _shop_id(value: Any) -> int:
    """The envelope's ``shopId``: a positive whole number a Java ``long`` holds (§1.1),
    sent as a number or as a string of digits."""
    if isinstance(value, str) and _digits(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_INT64:
        raise _undecodable(f"shopId {_shown(value)} is not a shop id (a whole number)")
    return value


def _digits(text: str) -> bool:
    """Whether ``text`` is a number Eleme sends as a string: ASCII digits, a long's worth."""
    return 0 < len(text) <= 19 and text.isascii() and text.isdigit()


def _shown(value: Any) -> str:
    """A refused envelope value as a refusal quotes it: short, whatever was sent."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, list | dict):
        return "a list" if isinstance(value, list) else "an object"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _request_id(value: Any) -> str:
    """The envelope's ``requestId``: the event's idempotency key."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise ValueError("requestId is not a string")
    key = str(value)
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"requestId is longer than {MAX_KEY_LENGTH} characters")
    return key


def _message(raw: Any, push_type: int) -> dict[str, Any]:
    if not isinstance(raw, str):
        raise _undecodable(f"the type {push_type} message is not a JSON string")
    try:
        message = decode_json(raw)
    except ValueError as exc:
        raise _undecodable(f"the type {push_type} message is not valid JSON: {exc}") from None
    if not isinstance(message, dict):
        raise _undecodable(f"the type {push_type} message is not a JSON object")
    return message


def _undecodable(message: str) -> UndecodablePush:
    return UndecodablePush(message, reply=refusal(message))
