"""A store's channels over HTTP: list them with their authorization, and turn a channel's
auto-accept on or off."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from waimai_bridge.runtime import Bridge
from waimai_bridge.store import channels
from waimai_bridge.store.credentials import ChannelAuthorization, CredentialStatus
from waimai_bridge.web.api import API, bridge_of
from waimai_bridge.web.authorizations import channel_statuses
from waimai_bridge.web.tokens import TOKEN_NAME
from waimai_bridge.web.views import iso

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/stores", tags=["stores"], dependencies=API)


class AuthorizationView(BaseModel):
    """Whether the bridge may act for the store on the platform; never a token."""

    status: CredentialStatus = Field(
        description="active: credentials stored; expiring: within "
        "[authorization].refresh_ahead_minutes of their expiry (or past it), the workers "
        "renew them; unauthorized: the store withdrew or lost its consent, nothing is sent "
        "to the platform for it until it is authorized again; static: none stored, the "
        "store's binding in the config is used."
    )
    expires_at: str | None = Field(description="When the access token expires (ISO 8601 UTC).")
    scope: str | None
    problem: str | None = Field(
        description="Why the channel is unauthorized, or why its last renewal failed."
    )


class ChannelView(BaseModel):
    """A store's channel on one platform."""

    platform: str
    auto_accept: bool = Field(description="The bridge confirms the channel's new orders itself.")
    source: Literal["config", "set"] = Field(
        description="config: [bridge].auto_accept; set: set through this API."
    )
    authorization: AuthorizationView


class ChannelsView(BaseModel):
    """A store's channels: the platforms the config binds it to."""

    store_id: str
    channels: list[ChannelView]


class ChannelChange(BaseModel):
    """What to set on a channel."""

    model_config = ConfigDict(extra="forbid")

    auto_accept: StrictBool


def _view(channel: channels.Channel, authorization: AuthorizationView) -> ChannelView:
    source: Literal["config", "set"] = "set" if channel.set else "config"
    return ChannelView(
        platform=channel.platform, auto_accept=channel.auto_accept, source=source,
        authorization=authorization,
    )  # fmt: skip


def _authorizations(
    session: Session, bridge: Bridge, store_id: str
) -> dict[str, AuthorizationView]:
    """The store's bound channels' authorization, by platform."""
    found = channel_statuses(
        session, bridge.config, now_ms=bridge.clock(), store_id=store_id, bound_only=True
    )
    return {channel.platform: _authorization(channel) for channel in found}


def _authorization(found: ChannelAuthorization) -> AuthorizationView:
    expires_at = None if found.expires_at_ms is None else iso(found.expires_at_ms)
    return AuthorizationView(
        status=found.status, expires_at=expires_at, scope=found.scope, problem=found.problem
    )


def _bound(bridge: Bridge, store_id: str) -> list[str]:
    """The platforms the config binds the store to; 404 for a store it does not know."""
    store = bridge.config.stores.get(store_id)
    if store is None:
        raise HTTPException(404, f"no store {store_id!r} in the config")
    return list(store.bindings)


@router.get("/{store_id}/channels", response_model=ChannelsView, summary="A store's channels")
async def get_channels(request: Request, store_id: str) -> ChannelsView:
    """Each platform the store is bound to, whether its new orders are auto-accepted, and
    its authorization there."""
    bridge = bridge_of(request)
    platforms = _bound(bridge, store_id)

    def read() -> list[ChannelView]:
        with bridge.database.reading() as session:
            found = channels.listing(session, store_id, platforms, bridge.config.bridge.auto_accept)
            authorizations = _authorizations(session, bridge, store_id)
        return [_view(channel, authorizations[channel.platform]) for channel in found]

    return ChannelsView(store_id=store_id, channels=await run_in_threadpool(read))


@router.put("/{store_id}/channels/{platform}", response_model=ChannelView, summary="Set a channel")
async def put_channel(
    request: Request, store_id: str, platform: str, body: ChannelChange
) -> ChannelView:
    """Turn auto-accept on or off for the store's orders of one platform."""
    bridge = bridge_of(request)
    if platform not in _bound(bridge, store_id):
        raise HTTPException(404, f"store {store_id!r} is not bound to platform {platform!r}")

    def write() -> AuthorizationView:
        with bridge.database.transaction() as session:
            channels.set_auto_accept(
                session, store_id, platform, body.auto_accept, now_ms=bridge.clock()
            )
            return _authorizations(session, bridge, store_id)[platform]

    authorization = await run_in_threadpool(write)
    logger.info(
        "auto-accept of store %s on %s turned %s by %s", store_id, platform,
        "on" if body.auto_accept else "off", getattr(request.state, TOKEN_NAME, "an unnamed token"),
    )  # fmt: skip
    channel = channels.Channel(platform, body.auto_accept, set=True)
    return _view(channel, authorization)
