"""Eleme's order API out: the chain's actions as signed nop 1.0.0 calls (platforms.md §2).

Every call is one JSON envelope POSTed to ``api_base``::

    {"nop": "1.0.0", "id": "<UUID hex upper>|<ms>", "action": "eleme.order.confirmOrderLite",
     "token": "<shop token>", "metas": {"app_key": "…", "timestamp": <s>},
     "params": {"orderId": "…"}, "signature": "<MD5 upper>"}

answered by ``{"id": …, "result": …, "error": null | {"code": …, "message": …}}``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from waimai_bridge.plugin_api import (
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    Action,
    ActionOutcome,
    ActionRequest,
    ActionResult,
    PlatformRejected,
    PluginConfig,
    TransientPlatformError,
)
from waimai_bridge_eleme import assumptions as facts
from waimai_bridge_eleme.signing import compact_json, request_signature

DEFAULT_API_BASE = "https://open-api.shop.ele.me/api/v1/"
DEFAULT_TIMEOUT_SECONDS = 10.0

CANCEL_TYPES: Mapping[str, str] = {
    "sold_out": "foodSoldOut",
    "closed": "restaurantClosed",
    "too_busy": "restaurantTooBusy",
    "out_of_range": "distanceTooFar",
    "cannot_contact_user": "contactUserFailed",
    "fake_order": "fakeOrder",
    "delivery_fault": "deliveryFault",
    "other": "others",
}
"""A cancel's reason keyword → Eleme's OInvalidateType (platforms.md §2.3). The reason is
``"<keyword>"`` or ``"<keyword>: <remark>"``; an Eleme type name is taken as is; any
other reason is sent as ``others`` with the whole text as the remark."""
ELEME_CANCEL_TYPES = frozenset(
    {*CANCEL_TYPES.values(), "forceRejectOrder", "notSatisfiedDeliveryRequirement"}
)


@dataclass(frozen=True)
class Call:
    """One API method and how to build its params from an action."""

    method: str
    params: Callable[[ActionRequest], dict[str, Any]]


def _order(action: ActionRequest) -> dict[str, Any]:
    return {"orderId": action.platform_order_id}


def _cancel(action: ActionRequest) -> dict[str, Any]:
    cancel_type, remark = cancel_reason(action.reason)
    return {"orderId": action.platform_order_id, "type": cancel_type, "remark": remark}


def _disagree(action: ActionRequest) -> dict[str, Any]:
    return {"orderId": action.platform_order_id, "reason": action.reason or "商家拒绝"}


CALLS: Mapping[Action, Call] = {
    Action.CONFIRM: Call("eleme.order.confirmOrderLite", _order),
    Action.CANCEL: Call("eleme.order.cancelOrderLite", _cancel),
    # one pair of methods answers both cancel and refund applications (§2.3)
    Action.AGREE_CANCEL: Call("eleme.order.agreeRefundLite", _order),
    Action.AGREE_REFUND: Call("eleme.order.agreeRefundLite", _order),
    Action.REJECT_CANCEL: Call("eleme.order.disagreeRefundLite", _disagree),
    Action.REJECT_REFUND: Call("eleme.order.disagreeRefundLite", _disagree),
}
"""The actions the plugin supports (the manifest's ``actions``) and their API methods."""

ALREADY_DONE: Mapping[Action, tuple[str, str]] = {
    Action.CONFIRM: facts.ALREADY_CONFIRMED,
    Action.CANCEL: facts.ALREADY_CANCELLED,
    Action.AGREE_CANCEL: facts.REQUEST_ALREADY_AGREED,
    Action.AGREE_REFUND: facts.REQUEST_ALREADY_AGREED,
    Action.REJECT_CANCEL: facts.REQUEST_ALREADY_REJECTED,
    Action.REJECT_REFUND: facts.REQUEST_ALREADY_REJECTED,
}
"""Each action's "already in that state" answer (code, words of the message): done."""


def cancel_reason(reason: str | None) -> tuple[str, str]:
    """The OInvalidateType and remark for a cancel's reason (see :data:`CANCEL_TYPES`)."""
    text = (reason or "").strip()
    keyword, _, remark = text.partition(":")
    keyword = keyword.strip()
    if keyword in CANCEL_TYPES:
        return CANCEL_TYPES[keyword], remark.strip()
    if keyword in ELEME_CANCEL_TYPES:
        return keyword, remark.strip()
    return "others", text


def envelope(
    method: str, params: Mapping[str, Any], *, app_key: str, secret: str, token: str
) -> dict[str, Any]:
    """The signed nop 1.0.0 envelope of one API call; ``metas.timestamp`` in seconds."""
    metas = {"app_key": app_key, "timestamp": int(time.time())}
    return {
        "nop": "1.0.0",
        "id": f"{uuid.uuid4().hex.upper()}|{int(time.time() * 1000)}",
        "action": method,
        "token": token,
        "metas": metas,
        "params": dict(params),
        "signature": request_signature(method, token, metas, params, secret),
    }


def perform(action: ActionRequest, config: PluginConfig) -> ActionResult:
    """Perform ``action`` on the Eleme API and classify the answer: transient when nothing
    was sent (no connection), unknown when the request went out and its answer was lost."""
    call = CALLS.get(action.action)
    if call is None:
        return _rejected("UNSUPPORTED", f"Eleme has no API for {action.action.value!r}")
    token = store_token(action.store_id, config)
    if not token:
        return _rejected("NO_TOKEN", f"store {action.store_id!r} has no Eleme token configured")
    try:
        response = post(call.method, call.params(action), config, token=token)
    except httpx.TransportError as exc:
        outcome = ActionOutcome.TRANSIENT if not_sent(exc) else ActionOutcome.UNKNOWN
        code, message = transport_problem(call.method, exc, config)
        return ActionResult(outcome=outcome, code=code, message=message)
    return classify(response, action.action)


def store_token(store_id: str, config: PluginConfig) -> str | None:
    """The access token to call the API with for a store: the one the bridge keeps for it
    (its authorization), else its binding's static ``token``; None when it has neither."""
    stored = config.access_tokens.get(store_id)
    if stored:
        return stored
    static = config.stores.get(store_id, {}).get("token")
    return str(static) if static else None


def post(
    method: str, params: Mapping[str, Any], config: PluginConfig, *, token: str
) -> httpx.Response:
    """POST one signed call to ``api_base``; httpx's ``TransportError`` when it fails."""
    settings = config.settings
    body = envelope(
        method, params, app_key=settings["app_key"], secret=settings["app_secret"], token=token
    )
    return httpx.post(
        settings.get("api_base", DEFAULT_API_BASE),
        content=compact_json(body).encode(),
        headers={
            "content-type": "application/json; charset=utf-8",
            "x-eleme-requestid": body["id"],
        },
        timeout=_timeout(config),
    )


def read(method: str, params: Mapping[str, Any], config: PluginConfig, *, token: str) -> Any:
    """The ``result`` of a call that only reads (an order, the messages not pushed), or of
    a confirmation.

    :raises TransientPlatformError: not answered, or answered with an error worth retrying.
    :raises PlatformRejected: answered with any other error (its code and message kept).
    """
    try:
        response = post(method, params, config, token=token)
    except httpx.TransportError as exc:
        code, message = transport_problem(method, exc, config)
        raise TransientPlatformError(message, code=code) from None
    answer = _answer(response)
    if answer is not None and answer["error"] is None:
        return answer.get("result")
    result = classify(response)
    error = (
        TransientPlatformError if result.outcome is ActionOutcome.TRANSIENT else PlatformRejected
    )
    raise error(f"{method}: {result.message}", code=result.code)


NOT_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
)
"""Transport failures before the request left: the platform cannot have acted on it."""


def not_sent(exc: httpx.TransportError) -> bool:
    """Whether the request failed before it was sent (no connection to the platform)."""
    return isinstance(exc, NOT_SENT)


def transport_problem(
    method: str, exc: httpx.TransportError, config: PluginConfig
) -> tuple[str, str]:
    """The code and message of a failed call: ``TIMEOUT`` or ``NETWORK``, never the URL."""
    if isinstance(exc, httpx.TimeoutException):
        return (
            "TIMEOUT",
            f"{method}: no answer within {_timeout(config):g} s ({type(exc).__name__})",
        )
    return "NETWORK", f"{method}: {type(exc).__name__}"


def _timeout(config: PluginConfig) -> float:
    return float(config.settings.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))


def classify(response: httpx.Response, action: Action | None = None) -> ActionResult:
    """Done, transient or rejected, from an answer of the API (its ``error`` decides); an
    error saying the order is already where ``action`` would put it is done."""
    answer = _answer(response)
    if answer is None:
        problem = f"HTTP {response.status_code} without an Eleme answer"
        if response.status_code >= 500 or response.status_code in (408, 429):
            return _transient(f"HTTP_{response.status_code}", problem)
        return _rejected(f"HTTP_{response.status_code}", problem)
    error = answer["error"]
    if error is None:
        return ActionResult(outcome=ActionOutcome.DONE)
    code = str(error.get("code") or "UNKNOWN") if isinstance(error, dict) else "UNKNOWN"
    message = str(error.get("message") or "") if isinstance(error, dict) else str(error)
    code, message = code[:MAX_ID_LENGTH], message[:MAX_TEXT_LENGTH]  # what the contract holds
    if code in facts.TRANSIENT_ERROR_CODES:
        return _transient(code, message)
    already = ALREADY_DONE.get(action) if action is not None else None
    if already is not None and code == already[0] and already[1] in message:
        return ActionResult(outcome=ActionOutcome.DONE, code=code, message=message)
    return _rejected(code, message)


def _answer(response: httpx.Response) -> dict[str, Any] | None:
    """The nop answer (a JSON object with ``error``), or None for anything else."""
    try:
        answer = response.json()
    except ValueError:
        return None
    return answer if isinstance(answer, dict) and "error" in answer else None


def _transient(code: str, message: str) -> ActionResult:
    return ActionResult(outcome=ActionOutcome.TRANSIENT, code=code, message=message)


def _rejected(code: str, message: str) -> ActionResult:
    return ActionResult(outcome=ActionOutcome.REJECTED, code=code, message=message)
