"""The platform's wire protocol: headers, signing, and the API path of each action.

Every push and every API call carries three headers: ``x-jsonhmac-app`` (the app id),
``x-jsonhmac-timestamp`` (epoch milliseconds) and ``x-jsonhmac-signature``: the lower-case
hex HMAC-SHA256, keyed with the app secret, of ``"<timestamp>.<raw body>"``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Final

from waimai_bridge.plugin_api import Action

APP_HEADER: Final = "x-jsonhmac-app"
TIMESTAMP_HEADER: Final = "x-jsonhmac-timestamp"
SIGNATURE_HEADER: Final = "x-jsonhmac-signature"

ACK: Final = '{"ok":true}'
"""What the platform expects as the answer to a push it may stop sending."""

ACTION_PATHS: Final[Mapping[Action, str]] = {
    Action.CONFIRM: "confirm",
    Action.CANCEL: "cancel",
    Action.AGREE_CANCEL: "cancellation/agree",
    Action.REJECT_CANCEL: "cancellation/reject",
    Action.AGREE_REFUND: "refund/agree",
    Action.REJECT_REFUND: "refund/reject",
    Action.MEAL_READY: "meal-ready",
}
"""Each supported action and its path below ``orders/{order_id}/``."""


def signature(secret: str, timestamp_ms: str, body: bytes) -> str:
    """The signature of a message: hex HMAC-SHA256 of ``"<timestamp>.<body>"``."""
    message = timestamp_ms.encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(app_id: str, secret: str, timestamp_ms: int, body: bytes) -> dict[str, str]:
    """The three headers of a signed message."""
    stamp = str(timestamp_ms)
    return {
        APP_HEADER: app_id,
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: signature(secret, stamp, body),
    }


def verify(secret: str, timestamp_ms: str, body: bytes, given: str) -> bool:
    """Whether ``given`` is the signature of the message (compared in constant time)."""
    expected = signature(secret, timestamp_ms, body)
    return hmac.compare_digest(expected.encode("ascii"), given.encode("utf-8", "replace"))


def canonical_json(document: Any) -> bytes:
    """Compact UTF-8 JSON, as the platform sends it."""
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
