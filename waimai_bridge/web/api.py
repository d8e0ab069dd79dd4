"""The read API (SPEC §7.3), behind bearer tokens: ``/api/v1/orders`` and platform orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Security
from fastapi.security import HTTPBearer
from pydantic import AfterValidator
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from waimai_bridge.bounds import MAX_INT64
from waimai_bridge.clock import moment_ms
from waimai_bridge.models import OrderState
from waimai_bridge.runtime import Bridge
from waimai_bridge.untrusted import unstorable
from waimai_bridge.web.views import (
    MAX_PAGE,
    BadCursor,
    OrderPage,
    OrderView,
    PlatformOrderView,
    find_order,
    find_platform_order,
    list_orders,
)

RowId = Annotated[int, Path(ge=1, le=MAX_INT64)]
"""An id in a URL path: a number out of the database's range is refused (400), not looked up."""

_bearer = HTTPBearer(auto_error=False, description="One of [bridge].api_tokens.")
"""The API's security scheme, as the OpenAPI document states it; the token itself is checked
before the route runs (:mod:`waimai_bridge.web.tokens`)."""


def bridge_of(request: Request) -> Bridge:
    """The bridge the app serves."""
    bridge: Bridge = request.app.state.bridge
    return bridge


def _storable(text: str) -> str:
    if (problem := unstorable(text)) is not None:
        raise ValueError(f"holds {problem}")
    return text


StorableText = Annotated[str, AfterValidator(_storable)]
"""Text of a request body that goes to the database."""


def storable_parameters(request: Request) -> None:
    """Refuse a path or query parameter that no database column can hold or compare."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if (problem := unstorable(str(value))) is not None:
            raise HTTPException(400, f"{name} holds {problem}, which no database text holds")


API = [Security(_bearer), Depends(storable_parameters)]
"""What every ``/api/v1`` route depends on: a token (stated), and parameters the database
can hold."""

router = APIRouter(prefix="/api/v1", tags=["orders"], dependencies=API)


def _since_ms(since: str | None) -> int | None:
    if since is None:
        return None
    try:
        return moment_ms(since)
    except ValueError as exc:
        raise HTTPException(400, f"since {exc}") from None


@router.get("/orders", response_model=OrderPage, summary="List orders")
async def orders(
    request: Request,
    store_id: str | None = None,
    platform: str | None = None,
    platform_order_id: str | None = None,
    state: OrderState | None = None,
    since: Annotated[
        str | None, Query(description="Updated at or after: epoch ms or ISO 8601.")
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=40,
            pattern=r"^[0-9]{1,19}(\.[0-9]{1,19})?$",
            description="next_cursor of the page before.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> OrderPage:
    """Orders matching every filter given, a page at a time: oldest first, or with
    ``since`` least recently updated first."""
    since_ms = _since_ms(since)
    bridge = bridge_of(request)

    def query(connection: Connection) -> OrderPage:
        return list_orders(
            connection,
            store_id=store_id,
            platform=platform,
            platform_order_id=platform_order_id,
            state=state,
            since_ms=since_ms,
            cursor=cursor,
            limit=limit,
        )

    try:
        return await run_in_threadpool(bridge.database.read, query)
    except BadCursor as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/orders/{order_id}", response_model=OrderView, summary="One order")
async def order(request: Request, order_id: RowId) -> OrderView:
    """The unified order with its events."""
    bridge = bridge_of(request)

    found = await run_in_threadpool(
        bridge.database.read, lambda connection: find_order(connection, order_id)
    )
    if found is None:
        raise HTTPException(404, f"no order {order_id}")
    return found


@router.get(
    "/platform-orders/{platform}/{platform_order_id}",
    response_model=PlatformOrderView,
    summary="A platform order",
)
async def platform_order(
    request: Request, platform: str, platform_order_id: str
) -> PlatformOrderView:
    """The ``waimai_order`` view: latest platform state, remembered state, stored or not."""
    bridge = bridge_of(request)

    found = await run_in_threadpool(
        bridge.database.read,
        lambda connection: find_platform_order(connection, platform, platform_order_id),
    )
    if found is None:
        raise HTTPException(404, f"the bridge has never seen {platform} order {platform_order_id}")
    return found
