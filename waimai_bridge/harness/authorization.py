"""The authorization suite, for plugins with the optional authorization hooks (contract
1.6): a store's consent asked for and given on the plugin's own fake, its code exchanged
once, credentials renewed, refused once the store withdraws its consent, an outage told
apart from a refusal, and no token in a log line or an error's text."""

from __future__ import annotations

import secrets as random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx

from waimai_bridge.authorization import (
    AuthorizationRequest,
    CodeExchange,
    Credentials,
    CredentialsRefresh,
)
from waimai_bridge.errors import PlatformError, PlatformRejected, TransientPlatformError
from waimai_bridge.harness.actions import running_fake
from waimai_bridge.harness.cases import Case, calling, ended_with
from waimai_bridge.harness.fake import FakePlatform
from waimai_bridge.harness.leaks import Watch, hide_secret_settings, watching
from waimai_bridge.harness.outcomes import Failed, Missing, NotApplicable
from waimai_bridge.harness.pushes import fixture_config
from waimai_bridge.harness.structure import declares
from waimai_bridge.harness.target import Target
from waimai_bridge.models import Capability

SUITE = "authorization"
HOOKS = (Capability.AUTHORIZE_URL, Capability.EXCHANGE_CODE, Capability.REFRESH_CREDENTIALS)
CALLBACK_PATH = "/oauth/{platform}/callback"
"""The bridge's callback under ``public_base_url`` (``pipeline.credentials.CALLBACK_PATH``)."""
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
"""The hosts the harness visits: the fake's, never a real platform's."""
MAX_HOPS = 5
"""Redirects followed on the fake's authorization page before the harness gives up."""
OUTAGE_STATUS = 503
UNKNOWN_CODE = "harness-no-such-code"


class Flow:
    """One store's authorization on a running fake, as the core goes through it."""

    def __init__(self, target: Target, fake: FakePlatform, watch: Watch, where: str) -> None:
        self.target = target
        self.fake = fake
        self.watch = watch
        self.where = where
        self.config = fake.configure(fixture_config(target))
        fake.reset()
        if not self.config.stores:
            raise Missing(f"{where}: config.json binds no store to authorize")
        self.store = next(iter(self.config.stores))
        self.redirect_uri = self.config.public_base_url + CALLBACK_PATH.format(platform=target.name)
        hide_secret_settings(watch, target.platform.manifest, self.config)

    def fake_does(self, method: str) -> Callable[..., Any]:
        """The fake's ``method`` of :class:`~.fake.AuthorizingFake`, or :class:`Missing`."""
        found = getattr(self.fake, method, None)
        if not callable(found):
            raise Missing(
                f"{self.where}: the fake has no {method}() of an authorizing fake (see "
                "docs/plugin-authors.md, 'The fake platform')"
            )
        return found  # type: ignore[no-any-return]

    def consent(self) -> str | None:
        """The code the store's owner gets by consenting on the page ``authorize_url``
        gives; None for an app that needs nobody's consent."""
        state = random.token_urlsafe(24)
        request = AuthorizationRequest(
            store_id=self.store, state=state, redirect_uri=self.redirect_uri
        )
        start = calling(
            f"{self.where}: authorize_url",
            partial(self.target.platform.authorize_url, request, self.config),
        )
        if start.url is None:
            return None
        self.fake_does("consenting")(self.store)
        code = self._follow(start.url, request)
        self.watch.hide("an authorization code", code)
        return code

    def _follow(self, url: str, request: AuthorizationRequest) -> str:
        callback = urlsplit(request.redirect_uri)
        where = f"{self.where}: the authorization page"
        # only loopback hosts are visited: the fake's, whose certificate nobody signed
        with httpx.Client(trust_env=False, verify=False, timeout=10.0) as client:
            for _ in range(MAX_HOPS):
                page = urlsplit(url)
                if page.hostname not in LOOPBACK:
                    raise Failed(
                        f"{where} {page.scheme}://{page.netloc}{page.path} is not the fake's: "
                        "configure(config) must point the plugin's authorization page at it"
                    )
                try:
                    response = client.get(url)
                except httpx.HTTPError as exc:
                    raise Failed(f"{where} did not answer: {type(exc).__name__}") from None
                location = response.headers.get("location")
                if not response.is_redirect or not location:
                    raise Failed(
                        f"{where} answered {response.status_code}, not a redirect to the "
                        "callback (the fake's store owner consents: see "
                        "docs/plugin-authors.md, 'The fake platform')"
                    )
                url = urljoin(url, location)
                landed = urlsplit(url)
                if landed[:3] == callback[:3]:
                    return _code_from(where, dict(parse_qsl(landed.query)), request.state)
        raise Failed(f"{where} did not send the owner to the callback in {MAX_HOPS} redirects")

    def exchange(self, code: str | None) -> CodeExchange:
        """The exchange of ``code`` for this store."""
        return CodeExchange(store_id=self.store, code=code, redirect_uri=self.redirect_uri)

    def exchanged(self, code: str | None, what: str = "exchange_code") -> Credentials:
        """The credentials ``exchange_code`` gives for ``code``."""
        credentials = self.granted(
            f"{self.where}: {what}",
            partial(self.target.platform.exchange_code, self.exchange(code), self.config),
        )
        problem = _past(credentials)
        if problem:
            raise Failed(f"{self.where}: {what}: {problem}")
        return credentials

    def authorized(self) -> tuple[Credentials, str | None]:
        """The store authorized: its credentials, and the code they came from."""
        code = self.consent()
        return self.exchanged(code), code

    def refresh(self, credentials: Credentials) -> Callable[[], Credentials]:
        """A call of ``refresh_credentials`` for ``credentials``."""
        refresh = CredentialsRefresh(store_id=self.store, credentials=credentials)
        return partial(self.target.platform.refresh_credentials, refresh, self.config)

    def granted(self, where: str, call: Callable[[], Credentials]) -> Credentials:
        """What ``call`` gives, which must be credentials."""
        try:
            credentials = calling(where, call, (PlatformError,))
        except PlatformError as exc:
            self.watch.errors.append(exc)
            raise Failed(f"{where}: expected credentials, raised {_named(exc)}") from None
        return self.watch.credentials(credentials)

    def refused(
        self, where: str, call: Callable[[], Credentials], expected: type[PlatformError]
    ) -> None:
        """``call`` must raise ``expected``."""
        try:
            credentials = calling(f"{self.where}: {where}", call, (PlatformError,))
        except PlatformError as exc:
            self.watch.errors.append(exc)
            if not isinstance(exc, expected):
                raise Failed(
                    f"{self.where}: {where}: expected {expected.__name__}, raised {_named(exc)}"
                ) from None
            return
        self.watch.credentials(credentials)
        raise Failed(f"{self.where}: {where}: expected {expected.__name__}, gave credentials")


def _code_from(where: str, query: dict[str, str], state: str) -> str:
    if query.get("state") != state:
        raise Failed(
            f"{where} sent the owner to the callback with "
            f"{'a different state' if query.get('state') else 'no state'}: the URL "
            "authorize_url gives must carry the request's state"
        )
    code = query.get("code")
    if not code:
        raise Failed(f"{where} sent the owner to the callback without a code")
    return code


def _named(exc: PlatformError) -> str:
    return type(exc).__name__ if exc.code is None else f"{type(exc).__name__} ({exc.code[:60]})"


def _past(credentials: Credentials) -> str | None:
    """What is wrong with an expiry that has passed already, if it has."""
    expires_at_ms = credentials.expires_at_ms
    if expires_at_ms is None or expires_at_ms > time.time() * 1000:
        return None
    return f"expires_at_ms: expected a time to come (epoch milliseconds), actual {expires_at_ms}"


@contextmanager
def _flow(target: Target, where: str) -> Iterator[Flow]:
    """A :class:`Flow` on a running fake, failing at the end on any leak."""
    with watching() as watch:
        with running_fake(target, where) as fake:
            yield Flow(target, fake, watch, where)
        watch.check(where)


def _check_together(target: Target) -> None:
    has = {capability: declares(target, capability) for capability in HOOKS}
    if has[Capability.AUTHORIZE_URL] != has[Capability.EXCHANGE_CODE]:
        raise Failed(
            "authorize_url and exchange_code are declared together: the core exchanges what "
            "the authorization gives (a code, or nothing for an app needing no consent)"
        )
    if has[Capability.REFRESH_CREDENTIALS] and not has[Capability.EXCHANGE_CODE]:
        raise Failed(
            "refresh_credentials is declared without authorize_url and exchange_code: it "
            "renews credentials they obtained"
        )


def _check_code_flow(target: Target) -> None:
    with _flow(target, "the code flow") as flow:
        flow.authorized()


def _check_codes_refused(target: Target) -> None:
    with _flow(target, "codes refused") as flow:
        code = flow.consent()
        if code is None:
            raise NotApplicable("the app needs nobody's consent: there is no code to refuse")
        exchange = flow.target.platform.exchange_code
        flow.exchanged(code)
        again = partial(exchange, flow.exchange(code), flow.config)
        flow.refused("exchange_code of a code used already", again, PlatformRejected)
        unknown = partial(exchange, flow.exchange(UNKNOWN_CODE), flow.config)
        flow.refused("exchange_code of a code never issued", unknown, PlatformRejected)


def _check_refresh(target: Target) -> None:
    with _flow(target, "refresh") as flow:
        credentials, _ = flow.authorized()
        for turn in ("first", "second"):
            where = f"{flow.where}: the {turn} refresh_credentials"
            renewed = flow.granted(where, flow.refresh(credentials))
            problems = [problem for problem in [_past(renewed)] if problem]
            if renewed.access_token == credentials.access_token:
                problems.append("access_token: expected a new one, actual the one renewed")
            before, after = credentials.expires_at_ms, renewed.expires_at_ms
            if before is not None and after is not None and after < before:
                problems.append(
                    f"expires_at_ms: expected no earlier than the renewed credentials' "
                    f"{before}, actual {after}"
                )
            if problems:
                raise Failed("\n".join(f"{where}: {problem}" for problem in problems))
            credentials = renewed


def _check_revoked(target: Target) -> None:
    with _flow(target, "revoked") as flow:
        credentials, code = flow.authorized()
        flow.fake_does("revoke")(flow.store)
        flow.refused(
            "refresh_credentials after the store withdrew its consent",
            flow.refresh(credentials),
            PlatformRejected,
        )
        if code is not None:
            again = flow.exchanged(flow.consent(), "exchange_code after consenting again")
            flow.granted(
                f"{flow.where}: refresh_credentials after consenting again", flow.refresh(again)
            )


def _check_unavailable(target: Target, *, stopped: bool) -> None:
    where = "unreachable" if stopped else "outage"
    why = "the fake was stopped" if stopped else f"the token endpoint answers {OUTAGE_STATUS}"
    with watching() as watch:
        with running_fake(target, where) as fake:
            flow = Flow(target, fake, watch, where)
            credentials, code = flow.authorized()
            fresh = flow.consent() if code is not None else None
            exchange = partial(target.platform.exchange_code, flow.exchange(fresh), flow.config)
            calls: list[tuple[str, Callable[[], Credentials]]] = [
                (f"exchange_code ({why})", exchange)
            ]
            if declares(target, Capability.REFRESH_CREDENTIALS):
                calls.append((f"refresh_credentials ({why})", flow.refresh(credentials)))
            if not stopped:
                flow.fake_does("token_outage")(OUTAGE_STATUS)
                for what, call in calls:
                    flow.refused(what, call, TransientPlatformError)
        if stopped:
            for what, call in calls:
                flow.refused(what, call, TransientPlatformError)
        watch.check(where)


def authorization_cases(target: Target) -> Iterator[Case]:
    """Where the plugin declares the authorization hooks: the three declared together; on
    its fake a store's consent gives a code (or, for an app needing none, credentials at
    once), exchanged once for credentials; they are renewed, refused once the store
    withdrew its consent and given again after it consents again; an outage or an
    unreachable platform is transient; no token shows in a log line or an error."""
    if not any(declares(target, capability) for capability in HOOKS):
        yield Case(SUITE, "(none)", ended_with(NotApplicable("the plugin authorizes no stores")))
        return
    yield Case(SUITE, "declared together", partial(_check_together, target))
    if not (
        declares(target, Capability.AUTHORIZE_URL) and declares(target, Capability.EXCHANGE_CODE)
    ):
        return
    renews = declares(target, Capability.REFRESH_CREDENTIALS)
    no_refresh = ended_with(NotApplicable("the plugin renews no credentials"))
    yield Case(SUITE, "code flow", partial(_check_code_flow, target))
    yield Case(SUITE, "codes refused", partial(_check_codes_refused, target))
    yield Case(SUITE, "refresh", partial(_check_refresh, target) if renews else no_refresh)
    yield Case(SUITE, "revoked", partial(_check_revoked, target) if renews else no_refresh)
    yield Case(SUITE, "outage", partial(_check_unavailable, target, stopped=False))
    yield Case(SUITE, "unreachable", partial(_check_unavailable, target, stopped=True))
