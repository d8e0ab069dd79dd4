"""Store authorization on Eleme against the fake over real HTTP: the authorize link, the code
flow, client credentials, refreshes that rotate, revocation and expiry refused, outages
told apart from refusals (the helpers here serve ``test_eleme_auth_channel`` too)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waimai_bridge_eleme import assumptions
from waimai_bridge_eleme.testing import FakeAnswer, FakeEleme

from waimai_bridge.authorization import (
    AuthorizationRequest,
    CodeExchange,
    Credentials,
    CredentialsRefresh,
)
from waimai_bridge.errors import PlatformError, PlatformRejected, TransientPlatformError
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import ActionOutcome, ActionRequest, PluginConfig
from waimai_bridge.plugins import PluginRegistry

CONFIG = PluginConfig.model_validate(
    {
        "platform": "eleme",
        **json.loads(
            (resources.files("waimai_bridge_eleme") / "fixtures" / "config.json").read_text()
        ),
    }
)
SETTINGS = CONFIG.settings
SECRET = str(SETTINGS["app_secret"])
APP_KEY = str(SETTINGS["app_key"])
STATIC = str(CONFIG.stores["S001"]["token"])
SHOP, OTHER_SHOP = 160012345, 160012346
CALLBACK = "https://bridge.example.com/oauth/eleme/callback"
STATE = "s7Gq2LkV9xWm4TnB8yRc1ZpD"
ORDER = "3084512398765432101"


@pytest.fixture(scope="module")
def eleme() -> Platform:
    return PluginRegistry.discover(blocked=()).platform("eleme")


@pytest.fixture
def fake() -> Iterator[FakeEleme]:
    with FakeEleme.for_fixtures() as running:
        running.sign_in(SHOP)
        yield running


def against(fake: FakeEleme, **settings: Any) -> PluginConfig:
    merged = {**SETTINGS, "api_base": fake.api_base, "oauth_base": fake.oauth_base, **settings}
    return CONFIG.model_copy(update={"settings": merged})


def consent(eleme: Platform, config: PluginConfig, state: str = STATE) -> str:
    """The code the shop's owner gets by consenting on the page authorize_url gives."""
    request = AuthorizationRequest(store_id="S001", state=state, redirect_uri=CALLBACK)
    start = eleme.authorize_url(request, config)
    assert start.url is not None
    page = httpx.get(start.url, follow_redirects=False, timeout=5)
    assert page.status_code == 302
    back = urlsplit(page.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    query = parse_qs(back.query)
    assert query["state"] == [state]
    return query["code"][0]


def exchange(code: str | None, store_id: str = "S001") -> CodeExchange:
    return CodeExchange(store_id=store_id, code=code, redirect_uri=CALLBACK)


def authorized(eleme: Platform, config: PluginConfig) -> Credentials:
    return eleme.exchange_code(exchange(consent(eleme, config)), config)


def refresh(credentials: Credentials) -> CredentialsRefresh:
    return CredentialsRefresh(store_id="S001", credentials=credentials)


CONFIRM = ActionRequest(
    action_id="A1", action="confirm", platform_order_id=ORDER, store_id="S001", attempt=1
)


# --------------------------------------------------------------------------- the link


@settings(max_examples=50, deadline=None)
@given(
    state=st.from_regex(r"\A[A-Za-z0-9_-]{16,128}\Z"),
    path=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_/", max_size=40),
    base=st.sampled_from(["https://open-api.shop.ele.me", "https://open-api-sandbox.shop.ele.me/"]),
)
def test_the_authorize_link_carries_the_app_the_callback_and_the_state(
    eleme: Platform, state: str, path: str, base: str
) -> None:
    redirect_uri = f"https://bridge.example.com/{path}?x=1&y=a b"
    config = CONFIG.model_copy(update={"settings": {**SETTINGS, "oauth_base": base}})
    request = AuthorizationRequest(store_id="S001", state=state, redirect_uri=redirect_uri)

    url = eleme.authorize_url(request, config).url

    assert url is not None
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == base.rstrip("/") + "/authorize"
    assert parse_qs(parts.query, strict_parsing=True) == {
        "response_type": ["code"],
        "client_id": [APP_KEY],
        "redirect_uri": [redirect_uri],
        "state": [state],
        "scope": [assumptions.AUTHORIZE_SCOPE],
    }


def test_the_production_page_is_the_default(eleme: Platform) -> None:
    request = AuthorizationRequest(store_id="S001", state=STATE, redirect_uri=CALLBACK)
    url = eleme.authorize_url(request, CONFIG).url
    assert url is not None
    assert url.startswith("https://open-api.shop.ele.me/authorize?")


def test_a_client_credentials_app_needs_no_link(eleme: Platform) -> None:
    config = CONFIG.model_copy(update={"settings": {**SETTINGS, "grant": "client_credentials"}})
    request = AuthorizationRequest(store_id="S001", state=STATE, redirect_uri=CALLBACK)
    assert eleme.authorize_url(request, config).url is None


# --------------------------------------------------------------------------- the code flow


def test_the_code_flow_gives_credentials_the_api_accepts(eleme: Platform, fake: FakeEleme) -> None:
    config = against(fake)
    fake.expire_in(7200)
    code = consent(eleme, config)
    before = int(time.time() * 1000)

    credentials = eleme.exchange_code(exchange(code), config)

    after = int(time.time() * 1000)
    assert credentials.access_token != STATIC
    assert credentials.refresh_token
    assert credentials.expires_at_ms is not None
    assert before - 1000 + 7_200_000 <= credentials.expires_at_ms <= after + 7_200_000
    [call] = fake.token_calls
    assert call.client_ok
    assert call.form == {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": APP_KEY,
    }
    assert (call.status, call.error) == (200, None)
    stored = config.model_copy(update={"access_tokens": {"S001": credentials.access_token}})
    result = eleme.outbound_action(CONFIRM, stored)
    assert result.outcome is ActionOutcome.DONE
    assert fake.calls[-1].token == credentials.access_token


def test_a_code_is_exchanged_once_and_only_with_its_callback(
    eleme: Platform, fake: FakeEleme
) -> None:
    config = against(fake)
    code = consent(eleme, config)
    eleme.exchange_code(exchange(code), config)

    with pytest.raises(PlatformRejected) as again:
        eleme.exchange_code(exchange(code), config)
    other = consent(eleme, config)
    elsewhere = CodeExchange(store_id="S001", code=other, redirect_uri="https://evil.example/cb")
    with pytest.raises(PlatformRejected) as moved:
        eleme.exchange_code(elsewhere, config)
    with pytest.raises(PlatformRejected) as unknown:
        eleme.exchange_code(exchange("no-such-code-0000"), config)

    assert again.value.code == moved.value.code == unknown.value.code == "invalid_grant"


def test_an_authorization_code_app_refuses_to_exchange_no_code(
    eleme: Platform, fake: FakeEleme
) -> None:
    with pytest.raises(PlatformRejected) as refused:
        eleme.exchange_code(exchange(None), against(fake))
    assert refused.value.code == "NO_CODE"
    assert fake.token_calls == []


def test_a_wrong_app_secret_is_refused_for_good(eleme: Platform, fake: FakeEleme) -> None:
    config = against(fake)
    code = consent(eleme, config)
    with pytest.raises(PlatformRejected) as refused:
        eleme.exchange_code(exchange(code), against(fake, app_secret="not-the-secret"))
    assert refused.value.code == "invalid_client"
    assert fake.token_calls[-1].client_ok is False


# --------------------------------------------------------------------------- client credentials


def test_client_credentials_give_and_renew_the_apps_token(eleme: Platform, fake: FakeEleme) -> None:
    config = against(fake, grant="client_credentials")

    first = eleme.exchange_code(exchange(None), config)
    renewed = eleme.refresh_credentials(refresh(first), config)

    assert first.refresh_token is None
    assert renewed.access_token != first.access_token
    assert [call.form for call in fake.token_calls] == [{"grant_type": "client_credentials"}] * 2
    for credentials in (first, renewed):
        stored = config.model_copy(update={"access_tokens": {"S001": credentials.access_token}})
        assert eleme.outbound_action(CONFIRM, stored).outcome is ActionOutcome.DONE


# --------------------------------------------------------------------------- refresh


def test_a_refresh_rotates_the_refresh_token(eleme: Platform, fake: FakeEleme) -> None:
    config = against(fake)
    first = authorized(eleme, config)

    second = eleme.refresh_credentials(refresh(first), config)
    third = eleme.refresh_credentials(refresh(second), config)

    assert len({first.access_token, second.access_token, third.access_token}) == 3
    assert len({first.refresh_token, second.refresh_token, third.refresh_token}) == 3
    assert fake.token_calls[1].form == {
        "grant_type": "refresh_token",
        "refresh_token": first.refresh_token,
    }
    with pytest.raises(PlatformRejected) as used:
        eleme.refresh_credentials(refresh(first), config)
    assert used.value.code == "invalid_grant"


def test_a_refresh_answer_without_a_refresh_token_keeps_the_old_one(
    eleme: Platform, fake: FakeEleme
) -> None:
    config = against(fake)
    first = authorized(eleme, config)
    fake.script_token(FakeAnswer.ok({"access_token": "a" * 32, "expires_in": "3600"}))
    before = int(time.time() * 1000)

    renewed = eleme.refresh_credentials(refresh(first), config)

    assert renewed.access_token == "a" * 32
    assert renewed.refresh_token == first.refresh_token
    assert renewed.expires_at_ms is not None
    assert before - 1000 + 3_600_000 <= renewed.expires_at_ms <= before + 3_610_000


def test_an_answer_without_a_lifetime_is_given_the_assumed_one(
    eleme: Platform, fake: FakeEleme
) -> None:
    fake.script_token(FakeAnswer.ok({"access_token": "b" * 32, "expires_in": None}))
    before = int(time.time() * 1000)
    credentials = eleme.exchange_code(exchange(None), against(fake, grant="client_credentials"))
    lifetime = assumptions.FALLBACK_TOKEN_LIFETIME_SECONDS * 1000
    assert credentials.expires_at_ms is not None
    assert before - 1000 + lifetime <= credentials.expires_at_ms <= before + lifetime + 10_000


def test_credentials_without_a_refresh_token_cannot_be_renewed(
    eleme: Platform, fake: FakeEleme
) -> None:
    bare = Credentials(access_token="c" * 32)
    with pytest.raises(PlatformRejected) as refused:
        eleme.refresh_credentials(refresh(bare), against(fake))
    assert refused.value.code == "NO_REFRESH_TOKEN"
    assert fake.token_calls == []


@pytest.mark.parametrize("by", ["shop", "access token", "refresh token"])
def test_a_revoked_authorization_is_refused_by_the_token_endpoint_and_the_api(
    eleme: Platform, fake: FakeEleme, by: str
) -> None:
    config = against(fake)
    credentials = authorized(eleme, config)
    if by == "shop":
        fake.revoke(shop_id=SHOP)
    else:
        token = credentials.access_token if by == "access token" else credentials.refresh_token
        fake.revoke(token=token)

    with pytest.raises(PlatformRejected) as refused:
        eleme.refresh_credentials(refresh(credentials), config)
    stored = config.model_copy(update={"access_tokens": {"S001": credentials.access_token}})
    result = eleme.outbound_action(CONFIRM, stored)

    assert refused.value.code == "invalid_grant"
    assert (result.outcome, result.code) == (
        ActionOutcome.REJECTED,
        assumptions.INVALID_TOKEN_ERROR,
    )
    again = authorized(eleme, config)  # the owner consents again
    assert eleme.refresh_credentials(refresh(again), config).access_token


def test_another_shops_revocation_leaves_the_store_authorized(
    eleme: Platform, fake: FakeEleme
) -> None:
    config = against(fake)
    credentials = authorized(eleme, config)
    fake.revoke(shop_id=OTHER_SHOP)
    assert eleme.refresh_credentials(refresh(credentials), config).access_token


def test_an_expired_access_token_is_refused_by_the_api(eleme: Platform) -> None:
    now = [time.time()]
    with FakeEleme.for_fixtures(clock=lambda: now[0]) as fake:
        fake.sign_in(SHOP)
        fake.expire_in(60)
        config = against(fake)
        credentials = authorized(eleme, config)
        stored = config.model_copy(update={"access_tokens": {"S001": credentials.access_token}})
        assert eleme.outbound_action(CONFIRM, stored).outcome is ActionOutcome.DONE
        now[0] += 61
        assert eleme.outbound_action(CONFIRM, stored).code == assumptions.INVALID_TOKEN_ERROR
        renewed = eleme.refresh_credentials(refresh(credentials), config)
        renewed_config = config.model_copy(update={"access_tokens": {"S001": renewed.access_token}})
        assert eleme.outbound_action(CONFIRM, renewed_config).outcome is ActionOutcome.DONE


# --------------------------------------------------------------------------- outages


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (FakeAnswer.http(502, "Bad Gateway"), "HTTP_502"),
        (FakeAnswer.http(503), "HTTP_503"),
        (FakeAnswer.http(429), "HTTP_429"),
        (FakeAnswer.drop(), "NETWORK"),
        (FakeAnswer.slow(2.0, FakeAnswer.http(504)), "TIMEOUT"),
        (FakeAnswer.ok(["not", "credentials"]), "ANSWER"),
        (FakeAnswer.ok({"token_type": "Bearer"}), "ANSWER"),
    ],
    ids=lambda value: getattr(value, "kind", str(value)),
)
def test_an_outage_is_transient_for_an_exchange_and_a_refresh(
    eleme: Platform, fake: FakeEleme, answer: FakeAnswer, code: str
) -> None:
    config = against(fake, timeout_seconds=0.5)
    credentials = authorized(eleme, config)
    code_given = consent(eleme, config)
    fake.script_token(answer, answer)

    with pytest.raises(TransientPlatformError) as exchanging:
        eleme.exchange_code(exchange(code_given), config)
    with pytest.raises(TransientPlatformError) as refreshing:
        eleme.refresh_credentials(refresh(credentials), config)

    assert exchanging.value.code == refreshing.value.code == code
    assert eleme.refresh_credentials(refresh(credentials), config).access_token  # over


@pytest.mark.parametrize(
    ("status", "error", "transient"),
    [
        (500, "server_error", True),
        (503, "temporarily_unavailable", True),
        (400, "temporarily_unavailable", True),
        (500, "invalid_grant", False),
        (400, "invalid_scope", False),
        (400, "something_new", False),
        (502, "something_new", True),
    ],
)
def test_an_oauth_error_is_transient_only_when_it_says_so(
    eleme: Platform, fake: FakeEleme, status: int, error: str, transient: bool
) -> None:
    body = json.dumps({"error": error, "error_description": "why"})
    fake.script_token(FakeAnswer.http(status, body))
    with pytest.raises(PlatformError) as raised:
        eleme.exchange_code(exchange(None), against(fake, grant="client_credentials"))
    assert isinstance(raised.value, TransientPlatformError) is transient
    assert isinstance(raised.value, PlatformRejected) is not transient
    assert raised.value.code == error


def test_an_unreachable_token_endpoint_is_transient(eleme: Platform) -> None:
    with FakeEleme.for_fixtures() as fake:
        config = against(fake, grant="client_credentials")
    with pytest.raises(TransientPlatformError) as raised:
        eleme.exchange_code(exchange(None), config)
    assert raised.value.code == "NETWORK"


def test_a_token_outage_lasts_until_reset(eleme: Platform, fake: FakeEleme) -> None:
    config = against(fake, grant="client_credentials")
    fake.token_outage(503)
    for _ in range(3):
        with pytest.raises(TransientPlatformError):
            eleme.exchange_code(exchange(None), config)
    fake.reset()
    assert eleme.exchange_code(exchange(None), config).access_token
