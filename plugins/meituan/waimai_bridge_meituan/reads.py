"""Reading an order on the Meituan API: its detail, its status and its refund applications.

Each read is a signed GET (:func:`.api.call`, with the store's access token for an ISV
app) answered ``{"data": …}``, or Meituan's error
``{"data":"ng","error":{"code":…,"msg":…}}`` (platforms.md §4.4). A read gives the ``data``,
None when Meituan does not know the order (806), and raises
:class:`~waimai_bridge.plugin_api.TransientPlatformError` for everything else: no answer,
another error, an answer that is not Meituan's JSON or not of the shape assumed
(:mod:`.assumptions`, "reading an order"). A read changes nothing, so every failure of one
is worth trying again (an ISV store without an access token included: ``NO_TOKEN``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Final

import httpx

from waimai_bridge.plugin_api import (
    MAX_ID_LENGTH,
    MAX_TEXT_LENGTH,
    PluginConfig,
    TransientPlatformError,
    decode_json,
    describe,
)
from waimai_bridge_meituan import api
from waimai_bridge_meituan import assumptions as facts

ORDER_DETAIL: Final = api.Endpoint("GET", facts.ORDER_DETAIL_PATH)
ORDER_STATUS: Final = api.Endpoint("GET", facts.ORDER_STATUS_PATH)
REFUND_DETAIL: Final = api.Endpoint("GET", facts.REFUND_DETAIL_PATH)

Clock = Callable[[], float]


def order_detail(
    order_id: str, config: PluginConfig, *, store_id: str, clock: Clock = time.time
) -> dict[str, Any] | None:
    """The order as ``order/getOrderDetail`` gives it (JSON values, not yet read as a
    push's); None when Meituan does not know it."""
    params = {"order_id": order_id, "is_mt_logistics": facts.IS_MT_LOGISTICS}
    data = query(ORDER_DETAIL, params, config, store_id=store_id, clock=clock)
    if data is None:
        return None
    if isinstance(data, list) and len(data) == 1:  # go-meituan's shape (DETAIL_DATA_SHAPES)
        data = data[0]
    if not isinstance(data, dict):
        raise TransientPlatformError(f"{ORDER_DETAIL.path} answered without an order")
    sent = data.get("order_id")
    if sent is not None and str(sent).strip() != order_id:
        raise TransientPlatformError(f"{ORDER_DETAIL.path} answered with another order")
    return data


def order_status(
    order_id: str, config: PluginConfig, *, store_id: str, clock: Clock = time.time
) -> str | None:
    """The order's ``status`` code as ``order/viewstatus`` gives it (``"4"``); None when
    Meituan does not know the order."""
    data = query(ORDER_STATUS, {"order_id": order_id}, config, store_id=store_id, clock=clock)
    if data is None:
        return None
    status = data.get("status") if isinstance(data, dict) else None
    text = "" if status is None or isinstance(status, bool) else str(status).strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 4):
        raise TransientPlatformError(f"{ORDER_STATUS.path} answered without a status")
    return text


def refund_applications(
    order_id: str, config: PluginConfig, *, store_id: str, clock: Clock = time.time
) -> list[dict[str, Any]] | None:
    """The order's refund applications, as ``getOrderRefundDetail`` lists them; None when
    Meituan does not know the order."""
    params = {facts.REFUND_ORDER_PARAM: order_id}
    data = query(REFUND_DETAIL, params, config, store_id=store_id, clock=clock)
    if data is None:
        return None
    if not isinstance(data, list):
        raise TransientPlatformError(f"{REFUND_DETAIL.path} answered without a list")
    return [entry for entry in data if isinstance(entry, dict)]


def query(
    endpoint: api.Endpoint,
    params: Mapping[str, str],
    config: PluginConfig,
    *,
    store_id: str,
    clock: Clock,
) -> Any:
    """The ``data`` of a read's answer for ``store_id``; None for 806 (no such order)."""
    try:
        token = api.token_for(store_id, config)
        response = api.call(endpoint, params, config, clock=clock, access_token=token)
    except api.NoToken as exc:
        raise failed(str(exc), code=api.NO_TOKEN) from None
    except httpx.HTTPError as exc:
        result = api.failure(exc, api.timeout_of(config))
        raise failed(f"{endpoint.path}: {result.message}") from None
    try:
        body = decode_json(response.text)
    except ValueError as exc:
        if response.status_code >= 400:
            raise _http(endpoint, response.status_code) from None
        text = f"{endpoint.path} answered what is not Meituan's JSON: {describe(exc)}"
        raise failed(text) from None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("code") is not None:
            code = str(error["code"])[:MAX_ID_LENGTH]
            if code == facts.NO_SUCH_ORDER_CODE:
                return None
            secret = str(config.settings["app_secret"])
            message = str(error.get("msg") or error.get("message") or "")
            message = api.clean(api.clean(message, secret), token or "")
            raise failed(f"{endpoint.path}: {message}", code=code)
        if response.status_code < 400 and body.get("data") not in (None, "ng"):
            return body["data"]
    if response.status_code >= 400:
        raise _http(endpoint, response.status_code)
    raise TransientPlatformError(f"{endpoint.path} answered without data")


def failed(message: str, *, code: str | None = None) -> TransientPlatformError:
    """A failed read, its message as long as a contract text may be."""
    return TransientPlatformError(message[:MAX_TEXT_LENGTH], code=code)


def _http(endpoint: api.Endpoint, status: int) -> TransientPlatformError:
    return failed(f"{endpoint.path}: HTTP {status}", code=f"http_{status}")
