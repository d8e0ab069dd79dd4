"""One Meituan order read from the API as native events (``fetch_order``).

``order/viewstatus`` gives the order's status and ``order/getOrderDetail`` the order itself
(:mod:`.reads`). They become two events at most, each with the key of the push that brings
the same message, so that a fetched event and its push apply once, whichever comes first:

- **the full order**, native code ``order_paid`` with the paid-order push's key
  ``order_paid:<order_id>`` (its identity field, ``order_id``, is always read), the detail's
  fields read as a push's are (strings; ``detail``, ``extras``, ``poi_receive_detail`` …
  parsed), so that ``price_breakdown`` prices it as the push; dated when the order was
  paid;
- **its current status** as the order push that brings an order there
  (``assumptions.ORDER_STATUS_CODES``): ``order_confirmed``, ``order_completed`` or
  ``order_cancelled``, with that push's key ``<code>:<order_id>`` (an order is confirmed,
  completed and cancelled once), dated when it got there. Its payload is what the read said
  (``order_id``, ``status``, ``app_poi_code``, that time), not a full order. A cancel read
  states no ``reason_code``, so it maps to 17 (cancelled after acceptance); 14 and 17 end an
  order alike (SPEC §5). At status 2 the full order is the status event; a new order read
  without its lines (never so on Meituan; so in a fake that only heard of a refund) is
  ``order_paid`` keyed ``fetch:order_paid:<order_id>``, leaving the push's key to the push
  and its lines: a second 10 (created) changes nothing in the fold.

Refunds are not fetched: only the refund pushes say which lines and amounts an application
is for, and a fetched refund beside its push under another key would count its amount
twice. Status 1 (submitted, not yet paid nor pushed to the merchant) is no order the
merchant has: None, as for an order Meituan does not know.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from waimai_bridge.plugin_api import (
    MAX_INT64,
    UNREADABLE,
    FetchedOrder,
    NativeEvent,
    OrderRef,
    PluginConfig,
    decode_json,
    describe,
)
from waimai_bridge_meituan import assumptions as facts
from waimai_bridge_meituan import prices, push, reads, states

FULL_ORDER_CODE: Final = "order_paid"
FETCHED_KEY_PREFIX: Final = "fetch"
UNPAID_STATUS: Final = "1"


def fetch(
    order: OrderRef, config: PluginConfig, *, clock: Callable[[], float] = time.time
) -> FetchedOrder | None:
    """The order's full order and current status as native events; None when Meituan does
    not know it (or it is not paid yet)."""
    order_id = order.platform_order_id
    status = reads.order_status(order_id, config, store_id=order.store_id, clock=clock)
    if status is None or status == UNPAID_STATUS:
        return None
    detail = reads.order_detail(order_id, config, store_id=order.store_id, clock=clock)
    if detail is None:
        return None
    check_complete(detail)
    now_ms = int(clock() * 1000)
    try:
        payload = as_pushed(detail)
        events = list(_events(order, status, payload, config, now_ms=now_ms))
        for event in events:  # what the worker could not map or price is no answer
            states.map_event(event)
            prices.breakdown(event, config)
        fetched = FetchedOrder(events=events) if events else None
    except UNREADABLE as exc:
        raise reads.failed(f"the order read cannot be read: {describe(exc)}") from None
    if fetched is None:
        raise reads.failed(
            f"the order read holds neither the order's lines nor a known status ({status})"
        )
    return fetched


def _events(
    order: OrderRef, status: str, payload: Mapping[str, Any], config: PluginConfig, *, now_ms: int
) -> Iterable[NativeEvent]:
    order_id = order.platform_order_id
    store_code = str(payload.get(facts.STORE_CODE_FIELD, "")).strip()
    inferred = not store_code or config.store_for(facts.STORE_CODE_FIELD, store_code) != (
        order.store_id
    )

    def event(
        code: str, body: dict[str, Any], time_fields: Iterable[str], *, pushed: bool = True
    ) -> NativeEvent:
        key = push.idempotency_key(code, code, {"order_id": order_id})
        return NativeEvent(
            platform=push.PLATFORM,
            store_id=order.store_id,
            store_inferred=inferred,
            platform_order_id=order_id,
            native_code=code,
            idempotency_key=key if pushed else f"{FETCHED_KEY_PREFIX}:{key}",
            platform_time_ms=first_time_ms(payload, (*time_fields, "utime")) or now_ms,
            payload=body,
        )

    whole = isinstance(payload.get("detail"), list) and str(payload.get("total", "")).strip()
    if whole:
        yield event(FULL_ORDER_CODE, dict(payload), facts.PAID_TIME_FIELDS)
    code = facts.ORDER_STATUS_CODES.get(status)
    if code is None or (code == FULL_ORDER_CODE and whole):
        return
    time_fields: tuple[str, ...] = facts.PAID_TIME_FIELDS
    said = {"order_id": order_id, "status": status}
    if code != FULL_ORDER_CODE:
        time_fields = (facts.STATUS_TIME_FIELDS[code],)
    for field in (facts.STORE_CODE_FIELD, *time_fields):
        if str(payload.get(field, "")).strip():
            said[field] = payload[field]
    # a new order read without its lines must leave the paid-order push's key to the push
    yield event(code, said, time_fields, pushed=code != FULL_ORDER_CODE)


def as_pushed(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The read order's fields as a push's are read: a string each, but for the JSON
    fields (``assumptions.JSON_FIELDS``), parsed; a null is absent."""
    payload: dict[str, Any] = {}
    for key, value in detail.items():
        if value is None:
            continue
        if key in facts.JSON_FIELDS:
            is_text = isinstance(value, str)
            payload[key] = decode_json(value) if is_text and value.strip() else value
        else:
            payload[key] = wire(value)
    return payload


def wire(value: object) -> str:
    """A JSON value as the text a push carries: strings as they are, numbers and booleans
    as JSON writes them, lists and objects as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def check_complete(detail: Mapping[str, Any]) -> None:
    """Refuse (for now) a read Meituan marks degraded in a module the prices come from
    (``assumptions.INCOMPLETE_PRICE_MODULES``)."""
    if str(detail.get("incmp_code", "")).strip() != facts.INCOMPLETE_CODE:
        return
    modules: Any = detail.get("incmp_modules")
    if isinstance(modules, str):
        try:
            modules = decode_json(modules)
        except ValueError:
            modules = None
    named = {str(module).strip() for module in modules} if isinstance(modules, list) else set()
    if not named or named & facts.INCOMPLETE_PRICE_MODULES:
        raise reads.failed(
            "Meituan marks the order read incomplete (incmp_code -1): to be read again"
        )


def first_time_ms(payload: Mapping[str, Any], fields: Iterable[str]) -> int | None:
    """The first of ``fields`` holding a time (epoch seconds, or milliseconds from
    ``assumptions.MILLISECONDS_FROM``), in ms; 0 or missing is no time."""
    for field in fields:
        text = str(payload.get(field, "")).strip()
        digits = text.lstrip("0") if text.isascii() and text.isdigit() else ""
        if not digits or len(digits) > push.MAX_TIME_DIGITS:
            continue
        number = int(digits)
        milliseconds = number if number >= facts.MILLISECONDS_FROM else number * 1000
        if milliseconds <= MAX_INT64:
            return milliseconds
    return None
