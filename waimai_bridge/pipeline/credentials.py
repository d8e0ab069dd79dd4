"""Store authorization on the platforms: authorization links handed out and completed,
credentials renewed, and the configuration a plugin is called with for a store, its access
token included (or a clear refusal when the channel is unauthorized)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from waimai_bridge.authorization import AuthorizationRequest, CodeExchange, CredentialsRefresh
from waimai_bridge.errors import PlatformRejected, WaimaiBridgeError
from waimai_bridge.models import Capability, PluginConfig
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.sealing import Sealer
from waimai_bridge.store import credentials as store
from waimai_bridge.store.credentials import CredentialStatus

logger = logging.getLogger(__name__)

CALLBACK_PATH = "/oauth/{platform}/callback"
"""Where a platform sends a store's owner back with the code, under public_base_url."""


class NotAuthorizing(WaimaiBridgeError):
    """The platform's plugin has no authorization hooks, or the store is not bound to it."""


class ChannelUnauthorized(WaimaiBridgeError):
    """The store's channel is unauthorized: nothing is sent to the platform for it."""

    def __init__(self, platform: str, store_id: str) -> None:
        super().__init__(
            f"store {store_id!r} has withdrawn or lost its authorization of the {platform} "
            f"app: authorize it again (waimai-bridge auth url --platform {platform} "
            f"--store {store_id})"
        )
        self.platform = platform
        self.store_id = store_id


class StateRefused(WaimaiBridgeError):
    """A callback's state was never issued for this platform, is used up or expired."""


@dataclass(frozen=True)
class Started:
    """An authorization begun: the page to send the store's owner to, or None when the
    app needed nobody's consent and the store is authorized already."""

    url: str | None


class Authorizations:
    """Authorizing stores on their platforms and keeping them authorized."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        settings = pipeline.config.authorization
        self.sealer = Sealer([key.get_secret_value() for key in settings.keys])
        self.ahead_ms = int(settings.refresh_ahead_minutes * 60_000)
        self.state_ms = int(settings.state_minutes * 60_000)

    def redirect_uri(self, platform: str) -> str:
        """The bridge's callback for ``platform``."""
        base = self.pipeline.config.bridge.public_base_url
        return base + CALLBACK_PATH.format(platform=platform)

    def _authorizing(self, platform: str, store_id: str) -> PluginConfig:
        plugin = self.pipeline.registry.platform(platform)
        if not plugin.supports(Capability.AUTHORIZE_URL):
            raise NotAuthorizing(f"the {platform} plugin does not authorize stores")
        config = self.pipeline.config.plugin_config(platform)
        if store_id not in config.stores:
            raise NotAuthorizing(f"store {store_id!r} is not bound to {platform} in the config")
        return config

    def start(self, platform: str, store_id: str) -> Started:
        """Begin authorizing a store: a single-use link, or the store authorized at once
        where the app needs nobody's consent."""
        config = self._authorizing(platform, store_id)
        pipeline = self.pipeline
        with pipeline.database.transaction() as session:
            state = store.issue_state(session, platform, store_id, now_ms=pipeline.clock())
        plugin = pipeline.registry.platform(platform)
        request = AuthorizationRequest(
            store_id=store_id, state=state, redirect_uri=self.redirect_uri(platform)
        )
        start = plugin.authorize_url(request, config)
        if start.url is not None:
            return Started(start.url)
        self._exchange(platform, store_id, None, config)
        return Started(None)

    def complete(self, platform: str, state: str, code: str) -> str:
        """The platform's callback: the store its state was issued for, now authorized
        with the credentials the code gives. Raises :class:`StateRefused` for a state not
        issued for ``platform``, used or expired."""
        pipeline = self.pipeline
        with pipeline.database.transaction() as session:
            store_id = store.use_state(
                session, platform, state, now_ms=pipeline.clock(), max_age_ms=self.state_ms
            )
        if store_id is None:
            raise StateRefused("this authorization link is unknown, used already or expired")
        self._exchange(platform, store_id, code, self._authorizing(platform, store_id))
        return store_id

    def _exchange(
        self, platform: str, store_id: str, code: str | None, config: PluginConfig
    ) -> None:
        exchange = CodeExchange(
            store_id=store_id, code=code, redirect_uri=self.redirect_uri(platform)
        )
        credentials = self.pipeline.registry.platform(platform).exchange_code(exchange, config)
        with self.pipeline.database.transaction() as session:
            store.save(
                session, self.sealer, platform, store_id, credentials, now_ms=self.pipeline.clock()
            )
        logger.info("store %s authorized on %s", store_id, platform)

    def renew(self, platform: str, store_id: str) -> None:
        """Renew a channel's stored credentials; a refusal makes it unauthorized (raises
        :class:`PlatformRejected`), an outage raises the plugin's transient error."""
        pipeline = self.pipeline
        with pipeline.database.transaction() as session:
            found = store.stored(
                session, self.sealer, platform, store_id,
                now_ms=pipeline.clock(), ahead_ms=self.ahead_ms,
            )  # fmt: skip
        if found is None or found.status == CredentialStatus.UNAUTHORIZED:
            raise NotAuthorizing(f"store {store_id!r} has no credentials of {platform} to renew")
        plugin = pipeline.registry.platform(platform)
        config = pipeline.config.plugin_config(platform)
        refresh = CredentialsRefresh(store_id=store_id, credentials=found.credentials)
        try:
            renewed = plugin.refresh_credentials(refresh, config)
        except PlatformRejected as exc:
            with pipeline.database.transaction() as session:
                store.mark_unauthorized(
                    session, platform, store_id, _problem(exc), now_ms=pipeline.clock()
                )
            raise
        with pipeline.database.transaction() as session:
            store.save(
                session, self.sealer, platform, store_id, renewed,
                now_ms=pipeline.clock(), renewed=True,
            )  # fmt: skip

    def config_for(self, platform: str, store_id: str) -> PluginConfig:
        """The configuration to call ``platform``'s hooks with for a store: its stored
        access token included, if it has one. Raises :class:`ChannelUnauthorized` when the
        channel is unauthorized."""
        config = self.pipeline.config.plugin_config(platform)
        if not self.sealer.ready:
            return config
        with self.pipeline.database.reading() as session:
            found = store.stored(
                session, self.sealer, platform, store_id,
                now_ms=self.pipeline.clock(), ahead_ms=self.ahead_ms,
            )  # fmt: skip
        if found is None:
            return config
        if found.status == CredentialStatus.UNAUTHORIZED:
            raise ChannelUnauthorized(platform, store_id)
        tokens = {**config.access_tokens, store_id: found.credentials.access_token}
        return config.model_copy(update={"access_tokens": tokens})


def _problem(exc: Exception) -> str:
    """A platform error as stored and shown: its type and the platform's code, never its
    message (which may quote a request)."""
    code = getattr(exc, "code", None)
    return type(exc).__name__ if code is None else f"{type(exc).__name__} {code}"
