"""Reading a running bridge's API (SPEC §7.3) in end-to-end tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx


def platform_order(base: str, platform: str, order: str, auth: Mapping[str, str]) -> httpx.Response:
    """``GET /api/v1/platform-orders/{platform}/{order}``."""
    return httpx.get(
        f"{base}/api/v1/platform-orders/{platform}/{order}", headers=dict(auth), timeout=10
    )


def order_view(
    base: str, platform: str, order: str, auth: Mapping[str, str]
) -> dict[str, Any] | None:
    """The stored order of a platform order, or None while it is not stored."""
    found = platform_order(base, platform, order, auth)
    if found.status_code != 200 or found.json()["order_id"] is None:
        return None
    answer = httpx.get(
        f"{base}/api/v1/orders/{found.json()['order_id']}", headers=dict(auth), timeout=10
    )
    view: dict[str, Any] = answer.json()
    return view


def outcome(view: Mapping[str, Any] | None) -> tuple[Any, ...] | None:
    """(state, rider state, remembered state, refunded fen) of an order view."""
    if view is None:
        return None
    return view["state"], view["rider_state"], view["saved_state"], view["refunded_amount"]
