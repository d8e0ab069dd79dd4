"""Outbound actions on the Meituan waimai open API (platforms.md §4).

Every action is a GET of ``api_base + path`` with the business parameters and the system
parameters ``app_id``, ``timestamp`` (epoch seconds) and ``sig`` in the query, and for an
ISV (服务商) app the store's ``access_token`` too (an ISV store without one is refused
before anything is sent, ``NO_TOKEN``). The answer
``{"data":"ok"}`` is done; ``{"data":"ng","error":{"code":…,"msg":…}}`` is transient for
700 / 711, done when it says the order or refund is already where the action would put it
(:data:`ALREADY_DONE`), and rejected for good otherwise, with Meituan's code and message
kept; HTTP 429 or a 5xx without Meituan's error body is transient. A failure to connect
is transient (nothing reached Meituan); a time-out or a broken connection once the request
was sent is ``unknown`` (it may have taken effect), settled by :mod:`.verify`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx

from waimai_bridge.plugin_api import (
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    Action,
    ActionOutcome,
    ActionRequest,
    ActionResult,
    PluginConfig,
)
from waimai_bridge_meituan import assumptions as facts
from waimai_bridge_meituan.signing import sig

DEFAULT_API_BASE: Final = "https://waimaiopen.meituan.com/api/v1/"
DEVELOPER: Final = "developer"
ISV: Final = "isv"
NO_TOKEN: Final = "NO_TOKEN"


@dataclass(frozen=True)
class Endpoint:
    """An API method: its HTTP method and path below ``api_base``."""

    method: str
    path: str


ENDPOINTS: Final[dict[Action, Endpoint]] = {
    Action.CONFIRM: Endpoint("GET", "order/confirm"),
    Action.CANCEL: Endpoint("GET", "order/cancel"),
    Action.AGREE_REFUND: Endpoint("GET", "order/refund/agree"),
    Action.AGREE_CANCEL: Endpoint("GET", "order/refund/agree"),
    Action.REJECT_REFUND: Endpoint("GET", "order/refund/reject"),
    Action.REJECT_CANCEL: Endpoint("GET", "order/refund/reject"),
    Action.MEAL_READY: Endpoint("GET", "order/preparationMealComplete"),
}
"""The canonical actions Meituan supports and their endpoints (§4.3). A user's partial
refund application is agreed or rejected through the same endpoints
(assumptions.PARTIAL_REFUND_APPLICATIONS_USE_REFUND_ENDPOINTS). The merchant-initiated
partial refund (``order/applyPartRefund``) has no canonical action yet."""

SUPPORTED_ACTIONS: Final = tuple(ENDPOINTS)

ALREADY_DONE: Final[dict[Action, tuple[str, str]]] = {
    Action.CONFIRM: facts.ALREADY_CONFIRMED,
    Action.CANCEL: facts.ALREADY_CANCELLED,
    Action.AGREE_REFUND: facts.REFUND_ALREADY_AGREED,
    Action.AGREE_CANCEL: facts.REFUND_ALREADY_AGREED,
    Action.REJECT_REFUND: facts.REFUND_ALREADY_REJECTED,
    Action.REJECT_CANCEL: facts.REFUND_ALREADY_REJECTED,
}
"""Each action's "already in that state" answer (code, words of the message): done."""


def cancel_reason_code(reason: str | None) -> str:
    """Meituan's merchant ``reason_code`` for a cancel's free-text reason (the documented
    mapping in :data:`~waimai_bridge_meituan.assumptions.CANCEL_REASON_CODES`)."""
    text = (reason or "").strip()
    if text[:4] in facts.MERCHANT_REASON_CODES and not text[4:5].isdigit():
        return text[:4]
    lowered = text.lower()
    for code, words in facts.CANCEL_REASON_CODES.items():
        if any(word.lower() in lowered for word in words):
            return code
    return facts.DEFAULT_CANCEL_REASON_CODE


def business_params(action: ActionRequest) -> dict[str, str]:
    """The business parameters of an action's API call (system parameters apart)."""
    params = {"order_id": action.platform_order_id}
    reason = (action.reason or "").strip()
    if action.action is Action.CANCEL:
        code = cancel_reason_code(reason)
        params["reason"] = reason or "其他原因"
        params["reason_code"] = code
    elif action.action in (Action.AGREE_REFUND, Action.AGREE_CANCEL):
        params["reason"] = reason or facts.DEFAULT_AGREE_REASON
    elif action.action in (Action.REJECT_REFUND, Action.REJECT_CANCEL):
        params["reason"] = reason or facts.DEFAULT_REJECT_REASON
    return params


def is_isv(config: PluginConfig) -> bool:
    """Whether the app is an ISV (服务商) app, whose calls carry a store's access token."""
    return bool(config.settings.get("app_type", DEVELOPER) == ISV)


def store_token(store_id: str, config: PluginConfig) -> str | None:
    """The access token of a store: the one the bridge keeps for it, else its binding's
    static ``access_token``; None when it has neither."""
    kept = config.access_tokens.get(store_id)
    if kept:
        return kept
    static = config.stores.get(store_id, {}).get(facts.ACCESS_TOKEN_PARAM)
    return str(static) if static else None


class NoToken(Exception):
    """An ISV store has no access token: nothing can be sent for it."""

    def __init__(self, store_id: str) -> None:
        super().__init__(
            f"store {store_id!r} has no Meituan access token: authorize it "
            f"(waimai-bridge auth url --platform meituan --store {store_id})"
        )


def token_for(store_id: str, config: PluginConfig) -> str | None:
    """The access token a call for ``store_id`` carries: None for a developer app.

    :raises NoToken: an ISV app's store without one.
    """
    if not is_isv(config):
        return None
    token = store_token(store_id, config)
    if token is None:
        raise NoToken(store_id)
    return token


def signed_params(
    url: str,
    params: Mapping[str, str],
    config: PluginConfig,
    *,
    now_s: int,
    access_token: str | None = None,
) -> dict[str, str]:
    """``params`` with the system parameters ``app_id``, ``timestamp``, ``access_token``
    (when given) and ``sig``."""
    signed = {**params, "app_id": str(config.settings["app_id"]), "timestamp": str(now_s)}
    if access_token is not None:
        signed[facts.ACCESS_TOKEN_PARAM] = access_token
    signed["sig"] = sig(url, signed, str(config.settings["app_secret"]))
    return signed


NOT_SENT: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)
"""The failures before the request left: nothing reached Meituan. Every other one (a read
or write time-out, a reset, a connection closed without an answer) may come after Meituan
received the request."""


def timeout_of(config: PluginConfig) -> float:
    """How long one API call may take, in seconds."""
    return float(config.settings.get("api_timeout_seconds") or facts.DEFAULT_TIMEOUT_SECONDS)


def api_base(config: PluginConfig) -> str:
    """The API root, with its trailing slash."""
    return str(config.settings.get("api_base") or DEFAULT_API_BASE)


def call(
    endpoint: Endpoint,
    params: Mapping[str, str],
    config: PluginConfig,
    *,
    clock: Callable[[], float],
    access_token: str | None = None,
) -> httpx.Response:
    """One signed call of ``endpoint`` with the business ``params`` (in the query of a GET,
    the form of a POST), carrying ``access_token`` when given; httpx's errors are the
    caller's to classify."""
    url = api_base(config) + endpoint.path
    signed = signed_params(url, params, config, now_s=int(clock()), access_token=access_token)
    with httpx.Client(timeout=timeout_of(config)) as client:
        if endpoint.method == "GET":
            return client.get(url, params=signed)
        return client.post(url, data=signed)


def failure(exc: httpx.HTTPError, timeout: float) -> ActionResult:
    """A call that got no answer: transient when it never left, unknown when it may have
    reached Meituan."""
    if isinstance(exc, httpx.ConnectTimeout):
        return ActionResult(
            outcome=ActionOutcome.TRANSIENT, message=f"no connection within {timeout:g} s"
        )
    if isinstance(exc, NOT_SENT):
        return ActionResult(
            outcome=ActionOutcome.TRANSIENT, message=f"network error: {type(exc).__name__}"
        )
    if isinstance(exc, httpx.TimeoutException):
        return ActionResult(
            outcome=ActionOutcome.UNKNOWN,
            message=f"no answer within {timeout:g} s after the request was sent",
        )
    return ActionResult(
        outcome=ActionOutcome.UNKNOWN,
        message=f"the connection broke after the request was sent: {type(exc).__name__}",
    )


def perform(
    action: ActionRequest, config: PluginConfig, *, clock: Callable[[], float] = time.time
) -> ActionResult:
    """Call the API for ``action`` once and say how Meituan answered."""
    endpoint = ENDPOINTS.get(action.action)
    if endpoint is None:
        return ActionResult(
            outcome=ActionOutcome.REJECTED,
            message=f"Meituan has no API for the action {action.action.value!r}",
        )
    try:
        token = token_for(action.store_id, config)
    except NoToken as exc:
        return ActionResult(outcome=ActionOutcome.REJECTED, code=NO_TOKEN, message=str(exc))
    try:
        response = call(endpoint, business_params(action), config, clock=clock, access_token=token)
    except httpx.HTTPError as exc:
        return failure(exc, timeout_of(config))
    return classify(
        response.status_code, response.text, secret=str(config.settings["app_secret"]),
        action=action.action, hidden=token,
    )  # fmt: skip


def classify(
    status: int,
    text: str,
    *,
    secret: str = "",
    action: Action | None = None,
    hidden: str | None = None,
) -> ActionResult:
    """How an API answer counts: done, rejected (final) or transient, code and message kept
    (with the secret and the ``hidden`` token blanked should the platform ever echo them);
    an error saying the order is already where ``action`` would put it is done."""
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("code") is not None:
            code = str(error["code"])[:MAX_ID_LENGTH]  # what the contract holds
            message = str(error.get("msg") or error.get("message") or "")
            message = clean(clean(message, secret), hidden or "")[:MAX_TEXT_LENGTH]
            already = ALREADY_DONE.get(action) if action is not None else None
            if code in facts.TRANSIENT_CODES:
                outcome = ActionOutcome.TRANSIENT
            elif already is not None and code == already[0] and already[1] in message:
                outcome = ActionOutcome.DONE
            else:
                outcome = ActionOutcome.REJECTED
            return ActionResult(outcome=outcome, code=code, message=message or None)
        data = body.get("data")
        if status < 400 and data is not None and data != "ng":
            return ActionResult(outcome=ActionOutcome.DONE)
    if status == 429 or status >= 500:
        return ActionResult(
            outcome=ActionOutcome.TRANSIENT, code=f"http_{status}", message=f"HTTP {status}"
        )
    if status >= 400:
        return ActionResult(
            outcome=ActionOutcome.REJECTED, code=f"http_{status}", message=f"HTTP {status}"
        )
    return ActionResult(
        outcome=ActionOutcome.TRANSIENT, message="an answer that is not Meituan's JSON"
    )


def clean(message: str, secret: str) -> str:
    """A platform's message with the secret blanked, should it ever echo it."""
    return message.replace(secret, "***") if secret else message
