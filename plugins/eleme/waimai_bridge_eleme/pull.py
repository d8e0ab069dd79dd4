"""Eleme's pull compensation (推送消息补偿, platforms.md §1.4): the messages it failed to push.

Two lists, both of the whole app, each message the push envelope a push's body holds:

- ``eleme.msgNew.getPushFailMsg`` — the core fulfilment types (10, 12, 14, 15, 17, 217,
  218), called with an empty token, kept on offer until ``eleme.msgNew.confirmPullMsg``
  (also with an empty token) takes their ids: the pull's receipt;
- ``eleme.message.getNonReachedOMessages`` — the other types, called with the store's token;
  nothing confirms them.

A pull keeps the messages of the store's shop and reads each exactly as a push of it is read
(:func:`.push.read_pulled`), so a pulled message and its late push are one event. Shapes the
research does not confirm are constants of :mod:`.assumptions`.
"""

from __future__ import annotations

import logging
from typing import Any

from waimai_bridge.plugin_api import (
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    UNREADABLE,
    Confirmed,
    NativeEvent,
    PlatformError,
    PluginConfig,
    PulledEvents,
    PullReceipt,
    PullRequest,
    PushRefused,
    TransientPlatformError,
    UnknownStore,
    decode_json,
    describe,
)
from waimai_bridge_eleme import api
from waimai_bridge_eleme import assumptions as facts
from waimai_bridge_eleme.push import read_pulled
from waimai_bridge_eleme.signing import compact_json

logger = logging.getLogger(__name__)

PUSH_FAIL = "eleme.msgNew.getPushFailMsg"
CONFIRM = "eleme.msgNew.confirmPullMsg"
NON_REACHED = "eleme.message.getNonReachedOMessages"
EMPTY_TOKEN = ""
"""The token of the msgNew methods: they take the app, and refuse a shop's token ([S-E5g])."""
MAX_EVENTS = 500
"""The most events one pull returns (the contract's bound on ``PulledEvents.events``)."""


def pull(request: PullRequest, config: PluginConfig) -> PulledEvents:
    """The store's messages Eleme failed to push, with the keys their pushes have.

    The receipt is the JSON list of the ``getPushFailMsg`` ids taken; ``more`` when that list
    held more of the store's messages than one pull takes (the receipt's length, the events'
    number). ``since_ms`` is not sent: the first list holds what is not confirmed, the
    second what was not handed yet (``NON_REACHED_ONCE_PER_TOKEN``).

    :raises TransientPlatformError: a list could not be read (nothing is returned then).
    """
    token = api.store_token(request.store_id, config)
    app = {facts.PUSH_FAIL_QUERY_APP_ID: _app_id(config)}
    failed = _listed(PUSH_FAIL, {facts.PUSH_FAIL_QUERY_PARAM: app}, config, EMPTY_TOKEN)
    # a store without a token still gets its core messages; the others need one (§1.4)
    others = _listed(NON_REACHED, {"appId": _app_id(config)}, config, token) if token else []
    events: dict[str, NativeEvent] = {}
    ids: list[Any] = []
    more = False
    for message in failed:
        event = _event(message, request.store_id, config)
        msg_id = _msg_id(message) if event is not None else None
        if event is None or msg_id is None:
            continue
        if len(events) >= MAX_EVENTS or len(compact_json([*ids, msg_id])) > MAX_TEXT_LENGTH:
            more = True  # the rest stays on offer: the next pull, after this one's confirm
            break
        ids.append(msg_id)
        events.setdefault(event.idempotency_key, event)
    dropped = 0
    for message in others:
        event = _event(message, request.store_id, config)
        if event is None or event.idempotency_key in events:
            continue
        if len(events) >= MAX_EVENTS:
            dropped += 1
            continue
        events[event.idempotency_key] = event
    if dropped:
        logger.warning("eleme pull of store %s: %d messages past %d left out",
                       request.store_id, dropped, MAX_EVENTS)  # fmt: skip
    receipt = compact_json(ids) if ids else None
    return PulledEvents(events=list(events.values()), receipt=receipt, more=more)


def confirm(receipt: PullReceipt, config: PluginConfig) -> Confirmed:
    """Confirm a pull's ``getPushFailMsg`` ids with ``confirmPullMsg``: all of them, or none.

    :raises TransientPlatformError: the platform did not take them (they come again).
    """
    try:
        ids = decode_json(receipt.receipt)
    except UNREADABLE as exc:
        raise TransientPlatformError(f"not a receipt of this plugin: {describe(exc)}") from None
    if not isinstance(ids, list) or not ids or not all(_id_ok(value) for value in ids):
        raise TransientPlatformError("not a receipt of this plugin: a list of message ids")
    request = {facts.PUSH_FAIL_QUERY_APP_ID: _app_id(config), facts.CONFIRM_IDS_FIELD: ids}
    try:
        api.read(CONFIRM, {facts.CONFIRM_PARAM: request}, config, token=EMPTY_TOKEN)
    except PlatformError as exc:
        raise TransientPlatformError(exc.message, code=exc.code) from None
    return Confirmed(count=len(ids))


def _listed(method: str, params: dict[str, Any], config: PluginConfig, token: str) -> list[Any]:
    """The messages one list method answers."""
    try:
        result = api.read(method, params, config, token=token)
    except PlatformError as exc:
        raise TransientPlatformError(exc.message, code=exc.code) from None
    if result is None:
        return []
    if not isinstance(result, list):
        raise TransientPlatformError(f"{method} answered no list of messages", code="ANSWER")
    return result


def _event(message: Any, store_id: str, config: PluginConfig) -> NativeEvent | None:
    """The message's event if it is the store's and readable; None (logged) otherwise."""
    try:
        event = read_pulled(message, config)
    except UnknownStore:  # a shop bound to no store: not this store's
        return None
    except PushRefused as exc:  # left out, unconfirmed: the platform keeps offering it
        logger.warning("eleme pull of store %s: a message left out: %s", store_id,
                       type(exc).__name__)  # fmt: skip
        return None
    return event if event.store_id == store_id else None


def _msg_id(message: dict[str, Any]) -> Any:
    """The id ``confirmPullMsg`` takes, as received; None (logged) when it has none."""
    value = message.get(facts.PUSH_FAIL_MESSAGE_ID)
    if not _id_ok(value):
        logger.warning("eleme pull: a message without a usable %s left out",
                       facts.PUSH_FAIL_MESSAGE_ID)  # fmt: skip
        return None
    return value


def _id_ok(value: Any) -> bool:
    """Whether ``value`` is a message id: a short string or a whole number."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value < 2**63
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH


def _app_id(config: PluginConfig) -> int:
    """The app's id as the API takes it, a number (the SDKs' ``int appId``)."""
    return int(str(config.settings["app_id"]))
