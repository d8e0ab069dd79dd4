"""Subscriber webhooks over HTTP (seed 001): subscribe, list, unsubscribe.

Every order state change (and every action outcome) is POSTed to each matching
subscription, signed with its secret; docs/subscribers.md says how to verify it. A URL
whose host does not resolve, or resolves to an address :mod:`waimai_bridge.egress`
refuses, is not subscribed (422).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

import httpx
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field, field_validator
from starlette.concurrency import run_in_threadpool

from waimai_bridge import egress
from waimai_bridge.models import OrderState
from waimai_bridge.store import subscriptions as subscription_store
from waimai_bridge.store.tables import Subscription
from waimai_bridge.web.api import API, RowId, StorableText, bridge_of
from waimai_bridge.web.views import iso

router = APIRouter(prefix="/api/v1", tags=["subscriptions"], dependencies=API)

Names = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=500)]


class SubscriptionAsk(BaseModel):
    """A subscriber: where to POST, the secret to sign with, and optional filters."""

    url: str = Field(max_length=2000)
    secret: StorableText = Field(min_length=16, max_length=200, description="Signs every update.")
    store_ids: Names | None = None
    platforms: Names | None = None
    states: list[OrderState] | None = Field(
        default=None, description="Order states to hear of; action outcomes always pass."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        try:
            httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a URL that can be called: {exc}") from None
        return value


class SubscriptionView(BaseModel):
    """A subscription, without its secret."""

    id: int
    url: str
    store_ids: list[str] | None
    platforms: list[str] | None
    states: list[str] | None
    created_at: str


def subscription_view(row: Subscription) -> SubscriptionView:
    """The API's view of a subscription."""
    return SubscriptionView(
        id=row.id, url=row.url, store_ids=row.store_ids, platforms=row.platforms,
        states=row.states, created_at=iso(row.created_at_ms),
    )  # fmt: skip


@router.post(
    "/subscriptions", status_code=201, response_model=SubscriptionView, summary="Subscribe"
)
async def subscribe(request: Request, body: SubscriptionAsk) -> SubscriptionView:
    """Start POSTing updates to ``url``."""
    bridge = bridge_of(request)

    def create() -> SubscriptionView:
        reachable(body.url, allow_private=bridge.config.bridge.subscriber_allow_private)
        with bridge.database.transaction() as session:
            row = subscription_store.subscribe(
                session, url=body.url, secret=body.secret, store_ids=body.store_ids,
                platforms=body.platforms,
                states=[state.value for state in body.states] if body.states else None,
                now_ms=bridge.clock(),
            )  # fmt: skip
            return subscription_view(row)

    return await run_in_threadpool(create)


def reachable(url: str, *, allow_private: bool) -> None:
    """Raise a 422 unless ``url``'s host resolves, and only to addresses the bridge may call."""
    try:
        egress.check_url(url, allow_private=allow_private)
    except egress.Unresolvable as exc:
        raise HTTPException(422, f"url: {exc}") from None
    except egress.AddressNotAllowed as exc:
        article = "an" if exc.reason[0] in "aeiou" else "a"
        raise HTTPException(
            422, f"url: its host resolves to {article} {exc.reason} address; {egress.RULE}"
        ) from None


@router.get("/subscriptions", response_model=list[SubscriptionView], summary="List subscriptions")
async def list_subscriptions(request: Request) -> list[SubscriptionView]:
    """Every subscription (secrets are never shown)."""
    bridge = bridge_of(request)

    def query() -> list[SubscriptionView]:
        with bridge.database.reading() as session:
            return [subscription_view(row) for row in subscription_store.subscriptions(session)]

    return await run_in_threadpool(query)


@router.delete("/subscriptions/{subscription_id}", status_code=204, summary="Unsubscribe")
async def unsubscribe(request: Request, subscription_id: RowId) -> Response:
    """Stop POSTing to a subscription; its undelivered updates are dropped."""
    bridge = bridge_of(request)

    def delete() -> bool:
        with bridge.database.transaction() as session:
            return subscription_store.unsubscribe(session, subscription_id)

    if not await run_in_threadpool(delete):
        raise HTTPException(404, f"no subscription {subscription_id}")
    return Response(status_code=204)
