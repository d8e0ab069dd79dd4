"""Eleme pushes for tests and demos: signed as Eleme signs them (platforms.md §1.1–1.2), and
read back the way the fake takes in a push it is told of."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

from waimai_bridge_eleme.signing import compact_json, push_signature

_DEFAULT_USER_ID: Final = 249698004053764774


def pushed_envelope(body: str) -> dict[str, Any] | None:
    """A push body's envelope, with its type (``_type``) and decoded message (``_message``,
    None when it is not an object); None when the body is no push envelope."""
    try:
        envelope = json.loads(body)
    except ValueError:
        return None
    if not isinstance(envelope, dict):
        return None
    push_type = envelope.get("type")
    if isinstance(push_type, str) and push_type.isascii() and push_type.isdigit():
        push_type = int(push_type)
    if not isinstance(push_type, int) or isinstance(push_type, bool):
        return None
    try:
        message = json.loads(envelope.get("message") or "")
    except (TypeError, ValueError):
        message = None
    return {
        **envelope,
        "_type": push_type,
        "_message": message if isinstance(message, dict) else None,
    }


_push_ids = itertools.count(int(time.time() * 1000) * 100_000)
_push_ids_lock = threading.Lock()


def _next_push_request_id() -> str:
    # Real requestIds are 18-digit strings ("200015698900989850", platforms.md §1.1).
    with _push_ids_lock:
        return str(next(_push_ids))


def deauthorization_message(
    shop_id: int, app_id: int, *, at_seconds: int, app_name: str = "waimai-bridge"
) -> dict[str, Any]:
    """The ``message`` of a type-100 push: the shop withdrew the app's authorization
    (``{shopId, appId, appName, relieveOAuthTime}``, platforms.md §1.5; the time's unit is
    not confirmed, seconds here)."""
    return {"shopId": shop_id, "appId": app_id, "appName": app_name, "relieveOAuthTime": at_seconds}


def push_envelope(
    type_: int,
    message: Mapping[str, Any] | str,
    *,
    app_id: int,
    shop_id: int,
    secret: str,
    request_id: str | None = None,
    timestamp_ms: int | None = None,
    user_id: int = _DEFAULT_USER_ID,
) -> dict[str, Any]:
    """A signed Eleme push envelope (platforms.md §1.1–1.2).

    ``message`` becomes a compact JSON string (a string is used verbatim); ``request_id``
    defaults to a fresh unique string of digits, ``timestamp_ms`` to now.
    """
    envelope: dict[str, Any] = {
        "requestId": request_id if request_id is not None else _next_push_request_id(),
        "type": type_,
        "appId": app_id,
        "message": message if isinstance(message, str) else compact_json(message),
        "shopId": shop_id,
        "timestamp": timestamp_ms if timestamp_ms is not None else int(time.time() * 1000),
        "userId": user_id,
    }
    envelope["signature"] = push_signature(envelope, secret)
    return envelope


def push_body(
    type_: int,
    message: Mapping[str, Any] | str,
    *,
    app_id: int,
    shop_id: int,
    secret: str,
    request_id: str | None = None,
    timestamp_ms: int | None = None,
    user_id: int = _DEFAULT_USER_ID,
) -> bytes:
    """The POST body of :func:`push_envelope`: its compact JSON in UTF-8."""
    envelope = push_envelope(
        type_,
        message,
        app_id=app_id,
        shop_id=shop_id,
        secret=secret,
        request_id=request_id,
        timestamp_ms=timestamp_ms,
        user_id=user_id,
    )
    return compact_json(envelope).encode("utf-8")
