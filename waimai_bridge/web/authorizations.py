"""Stores' authorization on their platforms as the operator's surfaces show it (the
``auth`` commands, the channels API, the board): each channel's status, never a secret."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from waimai_bridge.config import Config
from waimai_bridge.store import credentials as store
from waimai_bridge.store.credentials import ChannelAuthorization, CredentialStatus
from waimai_bridge.web.views import iso

NEEDS_ATTENTION = frozenset({CredentialStatus.UNAUTHORIZED, CredentialStatus.EXPIRING})
"""The statuses the board flags."""


def bound_channels(config: Config) -> list[tuple[str, str]]:
    """Every (platform, store id) the config binds."""
    return [
        (platform, store_config.store_id)
        for store_config in config.stores.values()
        for platform in store_config.bindings
    ]


def ahead_ms(config: Config) -> int:
    """How long before their expiry credentials count as expiring."""
    return int(config.authorization.refresh_ahead_minutes * 60_000)


def channel_statuses(
    session: Session,
    config: Config,
    *,
    now_ms: int,
    store_id: str | None = None,
    platform: str | None = None,
    bound_only: bool = False,
) -> list[ChannelAuthorization]:
    """Each channel's authorization (of one store, one platform): the config's bindings,
    and with ``bound_only`` false also channels whose credentials outlived their binding;
    by store, then platform."""
    bound = bound_channels(config)
    found = store.listing(
        session, now_ms=now_ms, ahead_ms=ahead_ms(config), bound=bound, store_id=store_id
    )
    kept = set(bound)
    return [
        channel
        for channel in found
        if (platform is None or channel.platform == platform)
        and (not bound_only or (channel.platform, channel.store_id) in kept)
    ]


def board_alerts(session: Session, config: Config, *, now_ms: int) -> list[dict[str, Any]]:
    """The bound channels the board flags (unauthorized or expiring), as it draws them."""
    return [
        {
            "store_id": channel.store_id,
            "platform": channel.platform,
            "status": str(channel.status),
            "expires_at": None if channel.expires_at_ms is None else iso(channel.expires_at_ms),
        }
        for channel in channel_statuses(session, config, now_ms=now_ms, bound_only=True)
        if channel.status in NEEDS_ATTENTION
    ]
