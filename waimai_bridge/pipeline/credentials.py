"""Store authorization on the platforms: authorization links handed out and completed,
credentials renewed ahead of their expiry (one worker at a time, on a schedule), the
platforms' notices of a store's consent taken, and the configuration a plugin is called
with for a store, its access token included (or a clear refusal when the channel is
unauthorized). A channel that becomes unauthorized has an anomaly open until it is
authorized again."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from waimai_bridge.authorization import AuthorizationRequest, CodeExchange, CredentialsRefresh
from waimai_bridge.errors import PlatformRejected, WaimaiBridgeError, failure_site
from waimai_bridge.metrics import CHANNEL_NOTICES, CREDENTIAL_RENEWALS
from waimai_bridge.models import Capability, ChannelNotice, PluginConfig
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.pipeline.periodic import LeasedJob
from waimai_bridge.sealing import Sealer
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store import anomalies
from waimai_bridge.store import credentials as store
from waimai_bridge.store.credentials import CredentialStatus

logger = logging.getLogger(__name__)

CALLBACK_PATH = "/oauth/{platform}/callback"
"""Where a platform sends a store's owner back with the code, under public_base_url."""
UNAUTHORIZED = AnomalyRule.CHANNEL_UNAUTHORIZED
WITHDRAWN = "the store withdrew its consent"
RENEWALS_PER_ROUND = 100
"""Channels one round renews at most (soonest expiry first)."""


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
        now = self.pipeline.clock()
        with self.pipeline.database.transaction() as session:
            store.save(session, self.sealer, platform, store_id, credentials, now_ms=now)
            anomalies.resolve_channel(session, platform, store_id, UNAUTHORIZED, now_ms=now)
        self.pipeline.deliveries_written(session)
        logger.info("store %s authorized on %s", store_id, platform)

    def renew(self, platform: str, store_id: str) -> None:
        """Renew a channel's stored credentials; a refusal makes it unauthorized and opens
        its anomaly (raises :class:`PlatformRejected`), an outage raises the plugin's
        transient error. Counted by outcome."""
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
            problem = f"the platform refused to renew its credentials ({_problem(exc)})"
            with pipeline.database.transaction() as session:
                self._unauthorized(session, platform, store_id, problem)
            pipeline.deliveries_written(session)
            CREDENTIAL_RENEWALS.labels(platform, "refused").inc()
            logger.warning("store %s is unauthorized on %s: %s", store_id, platform, problem)
            raise
        except Exception:
            CREDENTIAL_RENEWALS.labels(platform, "transient").inc()
            raise
        with pipeline.database.transaction() as session:
            store.save(
                session, self.sealer, platform, store_id, renewed,
                now_ms=pipeline.clock(), renewed=True,
            )  # fmt: skip
        CREDENTIAL_RENEWALS.labels(platform, "renewed").inc()

    def take_notices(self, platform: str, notices: Sequence[ChannelNotice]) -> None:
        """A push's notices of stores' consent, taken as the push is received: a store that
        withdrew it is unauthorized (its stored credentials marked, its anomaly opened), one
        that gave it back is active again (its anomaly resolved). A notice taken twice
        changes nothing more. A store without stored credentials (a static token) has
        nothing to mark: its anomaly says so, and its actions still go out."""
        pipeline = self.pipeline
        now = pipeline.clock()
        with pipeline.database.transaction() as session:
            for notice in notices:
                if notice.authorized:
                    store.mark_authorized(session, platform, notice.store_id, now_ms=now)
                    anomalies.resolve_channel(
                        session, platform, notice.store_id, UNAUTHORIZED, now_ms=now
                    )
                else:
                    self._unauthorized(session, platform, notice.store_id, WITHDRAWN)
        pipeline.deliveries_written(session)
        for notice in notices:
            change = "restored" if notice.authorized else "withdrawn"
            CHANNEL_NOTICES.labels(platform, change).inc()
            logger.info("store %s %s its consent on %s", notice.store_id,
                        "gave back" if notice.authorized else "withdrew", platform)  # fmt: skip

    def _unauthorized(self, session: Session, platform: str, store_id: str, problem: str) -> None:
        now = self.pipeline.clock()
        store.mark_unauthorized(session, platform, store_id, problem, now_ms=now)
        anomalies.open_channel(session, platform, store_id, UNAUTHORIZED, problem, now_ms=now)

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


@dataclass
class Renewed:
    """What a round of renewals did, as ``platform/store``."""

    renewed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """Now unauthorized."""
    failed: list[str] = field(default_factory=list)
    """Tried again after a backoff."""
    forgotten: int = 0
    """Authorization link states past their lifetime, deleted."""


class Renewer(LeasedJob[Renewed]):
    """Renews the credentials due for it (``[authorization] interval_seconds``, when it
    holds the lease): a platform that cannot answer is asked again after
    ``retry_seconds``, doubled on each failure in a row up to ``retry_max_seconds``; one
    that refuses leaves the channel unauthorized. Expired link states go as well."""

    lease = "credentials"

    def __init__(self, authorizations: Authorizations) -> None:
        settings = authorizations.pipeline.config.authorization
        super().__init__(authorizations.pipeline, interval_s=settings.interval_seconds)
        self.authorizations = authorizations
        self.retry_ms = int(settings.retry_seconds * 1000)
        self.retry_max_ms = int(settings.retry_max_seconds * 1000)

    def backoff_ms(self, failures: int) -> int:
        """How long to wait after a failed renewal that followed ``failures`` others."""
        wait_ms: int = self.retry_ms * 2 ** min(failures, 32)
        return min(wait_ms, self.retry_max_ms)

    def work(self) -> Renewed:
        """Forget expired link states, then renew each channel due, soonest expiry first."""
        pipeline, authorizations = self.pipeline, self.authorizations
        done = Renewed()
        with pipeline.database.transaction() as session:
            done.forgotten = store.forget_states(
                session, before_ms=pipeline.clock() - authorizations.state_ms
            )
        if not authorizations.sealer.ready:  # nothing can be stored without a key
            return done
        with pipeline.database.reading() as session:
            due = store.due(
                session, now_ms=pipeline.clock(), ahead_ms=authorizations.ahead_ms,
                limit=RENEWALS_PER_ROUND,
            )  # fmt: skip
        for platform, store_id in due:
            channel = f"{platform}/{store_id}"
            try:
                authorizations.renew(platform, store_id)
            except PlatformRejected:
                done.refused.append(channel)
            except Exception as exc:
                self._later(platform, store_id, exc)
                done.failed.append(channel)
            else:
                done.renewed.append(channel)
        return done

    def _later(self, platform: str, store_id: str, exc: Exception) -> None:
        pipeline = self.pipeline
        now = pipeline.clock()
        with pipeline.database.transaction() as session:
            found = store.listing(session, now_ms=now, ahead_ms=0, store_id=store_id)
            failures = next((c.failures for c in found if c.platform == platform), 0)
            wait_ms = self.backoff_ms(failures)
            store.renewal_failed(
                session, platform, store_id, _problem(exc), now_ms=now, retry_at_ms=now + wait_ms
            )
        logger.warning("renewal of store %s on %s failed, tried again in %d s: %s",
                       store_id, platform, wait_ms // 1000, failure_site(exc))  # fmt: skip

    def report(self, done: Renewed) -> None:
        """Log a round that renewed or failed to renew anything."""
        if done.renewed or done.refused or done.failed:
            logger.info("credentials renewed %s, refused %s, failed %s",
                        done.renewed, done.refused, done.failed)  # fmt: skip
