"""A store's channels over HTTP: list them, and turn a channel's auto-accept on or off."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from starlette.concurrency import run_in_threadpool

from waimai_bridge.runtime import Bridge
from waimai_bridge.store import channels
from waimai_bridge.web.api import API, bridge_of
from waimai_bridge.web.tokens import TOKEN_NAME

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/stores", tags=["stores"], dependencies=API)


class ChannelView(BaseModel):
    """A store's channel on one platform."""

    platform: str
    auto_accept: bool = Field(description="The bridge confirms the channel's new orders itself.")
    source: Literal["config", "set"] = Field(
        description="config: [bridge].auto_accept; set: set through this API."
    )


class ChannelsView(BaseModel):
    """A store's channels: the platforms the config binds it to."""

    store_id: str
    channels: list[ChannelView]


class ChannelChange(BaseModel):
    """What to set on a channel."""

    model_config = ConfigDict(extra="forbid")

    auto_accept: StrictBool


def _view(channel: channels.Channel) -> ChannelView:
    source: Literal["config", "set"] = "set" if channel.set else "config"
    return ChannelView(platform=channel.platform, auto_accept=channel.auto_accept, source=source)


def _bound(bridge: Bridge, store_id: str) -> list[str]:
    """The platforms the config binds the store to; 404 for a store it does not know."""
    store = bridge.config.stores.get(store_id)
    if store is None:
        raise HTTPException(404, f"no store {store_id!r} in the config")
    return list(store.bindings)


@router.get("/{store_id}/channels", response_model=ChannelsView, summary="A store's channels")
async def get_channels(request: Request, store_id: str) -> ChannelsView:
    """Each platform the store is bound to, and whether its new orders are auto-accepted."""
    bridge = bridge_of(request)
    platforms = _bound(bridge, store_id)

    def read() -> list[channels.Channel]:
        with bridge.database.transaction() as session:
            return channels.listing(session, store_id, platforms, bridge.config.bridge.auto_accept)

    found = await run_in_threadpool(read)
    return ChannelsView(store_id=store_id, channels=[_view(channel) for channel in found])


@router.put("/{store_id}/channels/{platform}", response_model=ChannelView, summary="Set a channel")
async def put_channel(
    request: Request, store_id: str, platform: str, body: ChannelChange
) -> ChannelView:
    """Turn auto-accept on or off for the store's orders of one platform."""
    bridge = bridge_of(request)
    if platform not in _bound(bridge, store_id):
        raise HTTPException(404, f"store {store_id!r} is not bound to platform {platform!r}")

    def write() -> None:
        with bridge.database.transaction() as session:
            channels.set_auto_accept(
                session, store_id, platform, body.auto_accept, now_ms=bridge.clock()
            )

    await run_in_threadpool(write)
    logger.info(
        "auto-accept of store %s on %s turned %s by %s", store_id, platform,
        "on" if body.auto_accept else "off", getattr(request.state, TOKEN_NAME, "an unnamed token"),
    )  # fmt: skip
    return ChannelView(platform=platform, auto_accept=body.auto_accept, source="set")
