"""A push the fake Meituan platform sent (or failed to send), read back into its native code
and parameters, so that the fake's order book learns what it told.

The push is a push fixture's request as the contract harness has it: ``{"method", "url",
"kind", "query", "headers", "body"}``. Its parameters are read as the plugin reads them
(:func:`waimai_bridge_meituan.push.verified_reading`): the reading the ``sig`` matches over
the callback URL, tried with the request's ``url`` and with the fake's public base URL;
failing both (a push signed for another URL), the first reading.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from waimai_bridge.plugin_api import PushRefused
from waimai_bridge_meituan import assumptions as facts
from waimai_bridge_meituan.push import WEBHOOK_PATH, native_code, readings, verified_reading


def read_push(
    push: Mapping[str, Any], *, secret: str, public_base_url: str
) -> tuple[str, dict[str, str]] | None:
    """The native code and the decoded parameters (without ``sig``) of ``push``; None for
    a probe, a kind Meituan does not push, or a push the plugin could not read."""
    url = str(push.get("url") or "")
    kind = str(push.get("kind") or urlsplit(url).path.rsplit("/", 1)[-1])
    if kind not in facts.KIND_CODES:
        return None
    pairs = [(str(name), str(value)) for name, value in push.get("query") or []]
    body = push.get("body") or ""
    text = body.decode("utf-8") if isinstance(body, bytes) else str(body)
    if str(push.get("method") or "POST").upper() == "POST" and text.strip():
        pairs += parse_qsl(text, keep_blank_values=True)
    params = dict(pairs)
    if not params:
        return None
    urls = [url.split("?", 1)[0]] if url else []
    urls.append(public_base_url.rstrip("/") + WEBHOOK_PATH + kind)
    reading = None
    for candidate in urls:
        reading = verified_reading(candidate, params, secret, params.get("sig", ""))
        if reading is not None:
            break
    if reading is None:
        reading = {key: value for key, value in next(readings(params)).items() if key != "sig"}
    try:
        return native_code(kind, reading), reading
    except PushRefused:
        return None
