"""The platform's order API: ``POST {api_base}orders/{order_id}/{action path}``.

The body is ``{"shop_id", "reason"}`` (reason only when given), signed like a push. The
answer ``{"ok": true}`` means done; ``{"ok": false, "code", "message"}`` with a 4xx status
is final, except 408 and 429; any 5xx, a time-out or a broken connection is transient.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from waimai_bridge.plugin_api import ActionOutcome, ActionRequest, ActionResult, PluginConfig
from waimai_bridge_jsonhmac.protocol import ACTION_PATHS, canonical_json, signed_headers

DEFAULT_API_BASE = "https://api.jsonhmac.example/v1/"
RETRY_STATUSES = frozenset({408, 429})


def perform(action: ActionRequest, config: PluginConfig) -> ActionResult:
    """Call the API for ``action`` and classify the answer."""
    path = ACTION_PATHS.get(action.action)
    if path is None:
        return _result(ActionOutcome.REJECTED, "UNSUPPORTED", f"no API for {action.action}")
    binding = config.stores.get(action.store_id, {})
    if "shop_id" not in binding:
        return _result(ActionOutcome.REJECTED, "NO_SHOP", f"store {action.store_id!r} is unbound")
    settings = config.settings
    body: dict[str, Any] = {"shop_id": str(binding["shop_id"])}
    if action.reason:
        body["reason"] = action.reason
    content = canonical_json(body)
    headers = signed_headers(
        str(settings["app_id"]), str(settings["app_secret"]), int(time.time() * 1000), content
    )
    url = f"{settings.get('api_base', DEFAULT_API_BASE)}orders/{action.platform_order_id}/{path}"
    timeout = float(settings.get("timeout_seconds", 10))
    try:
        response = httpx.post(
            url,
            content=content,
            headers={**headers, "content-type": "application/json"},
            timeout=timeout,
        )
    except httpx.TimeoutException:
        return _result(ActionOutcome.TRANSIENT, "TIMEOUT", f"no answer within {timeout:g} s")
    except httpx.TransportError as exc:
        return _result(ActionOutcome.TRANSIENT, "NETWORK", type(exc).__name__)
    return classify(response)


def classify(response: httpx.Response) -> ActionResult:
    """Done, rejected or transient, from the API's answer."""
    try:
        answer = response.json()
    except ValueError:
        answer = None
    status = response.status_code
    if isinstance(answer, dict) and answer.get("ok") is True and status < 300:
        return ActionResult(outcome=ActionOutcome.DONE)
    if isinstance(answer, dict) and "code" in answer:
        code, message = str(answer["code"]), str(answer.get("message") or answer["code"])
    else:
        code, message = f"HTTP_{status}", f"HTTP {status} without an answer of the platform"
    transient = status >= 500 or status in RETRY_STATUSES
    return _result(ActionOutcome.TRANSIENT if transient else ActionOutcome.REJECTED, code, message)


def _result(outcome: ActionOutcome, code: str, message: str) -> ActionResult:
    return ActionResult(outcome=outcome, code=code, message=message)
