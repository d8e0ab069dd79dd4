"""The Meituan plugin's store authorization (an ISV app's access tokens) and the access token
its API calls carry, over real HTTP against the plugin's fake platform."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from waimai_bridge_meituan import assumptions as facts
from waimai_bridge_meituan import oauth
from waimai_bridge_meituan.signing import sig
from waimai_bridge_meituan.testing import (
    FIXTURE_APP_ID,
    FIXTURE_SECRET,
    FakeAnswer,
    FakeMeituan,
    fixture_config,
)

from waimai_bridge.authorization import (
    AuthorizationRequest,
    CodeExchange,
    Credentials,
    CredentialsRefresh,
)
from waimai_bridge.cli.processes import QUIET_LOGGERS
from waimai_bridge.errors import PlatformError, PlatformRejected, TransientPlatformError
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import (
    Action,
    ActionOutcome,
    ActionRequest,
    ActionResult,
    PluginConfig,
)
from waimai_bridge.pulled import OrderRef

ORDER_ID = "27061900338318741"
STORE = "S001"
STORE_CODE = "STORE-001"
STATE = "state-0123456789abcdef"
LIFETIME_S = 3600
DONE = ActionResult(outcome=ActionOutcome.DONE)


class Callback:
    """The bridge's callback as a browser reaches it: a real HTTP server keeping each
    query it was sent."""

    def __init__(self) -> None:
        received: list[dict[str, str]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                received.append(dict(parse_qsl(urlsplit(self.path).query)))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.received = received
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        host, port = self.server.server_address[:2]
        self.uri = f"http://{host!s}:{port}/oauth/meituan/callback"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeMeituan]:
    with FakeMeituan(app_type="isv", token_lifetime_s=LIFETIME_S) as running:
        yield running


@pytest.fixture
def callback() -> Iterator[Callback]:
    server = Callback()
    yield server
    server.close()


def isv(fake: FakeMeituan, **settings: object) -> PluginConfig:
    return fixture_config(api_base=fake.api_base, app_type="isv", **settings)


def with_token(config: PluginConfig, token: str, store: str = STORE) -> PluginConfig:
    return config.model_copy(update={"access_tokens": {store: token}})


def action(name: Action = Action.CONFIRM) -> ActionRequest:
    return ActionRequest(
        action_id="A1", action=name, platform_order_id=ORDER_ID, store_id=STORE, attempt=1
    )


def consent(meituan: Platform, config: PluginConfig, callback: Callback) -> str:
    """The store's owner visits the page authorize_url gives and consents: the code the
    browser brings to the callback."""
    request = AuthorizationRequest(store_id=STORE, state=STATE, redirect_uri=callback.uri)
    start = meituan.authorize_url(request, config)
    assert start.url is not None
    landed = httpx.get(start.url, follow_redirects=True, timeout=10)
    assert landed.status_code == 200
    assert str(landed.url).split("?")[0] == callback.uri
    query = callback.received[-1]
    assert query["state"] == STATE
    return query["code"]


def exchange(code: str | None, callback_uri: str = "https://bridge.example.com/cb") -> CodeExchange:
    return CodeExchange(store_id=STORE, code=code, redirect_uri=callback_uri)


def authorized(meituan: Platform, config: PluginConfig, callback: Callback) -> Credentials:
    code = consent(meituan, config, callback)
    return meituan.exchange_code(exchange(code, callback.uri), config)


def refreshed(meituan: Platform, config: PluginConfig, credentials: Credentials) -> Credentials:
    refresh = CredentialsRefresh(store_id=STORE, credentials=credentials)
    return meituan.refresh_credentials(refresh, config)


# --------------------------------------------------------------------------- developer apps


def test_a_developer_app_sends_no_access_token(meituan: Platform) -> None:
    with FakeMeituan() as developer:
        config = fixture_config(api_base=developer.api_base)
        assert meituan.outbound_action(action(), with_token(config, "kept-but-unused")) == DONE
        [call] = developer.calls
    assert call.sig_ok
    assert set(call.system) == {"app_id", "timestamp", "sig"}


def test_a_developer_app_authorizes_no_store(meituan: Platform) -> None:
    config = fixture_config()
    request = AuthorizationRequest(store_id=STORE, state=STATE, redirect_uri="https://b.example/cb")
    with pytest.raises(PlatformRejected) as refused:
        meituan.authorize_url(request, config)
    assert refused.value.code == "DEVELOPER_APP"
    assert 'app_type = "isv"' in refused.value.message
    with pytest.raises(PlatformRejected):
        meituan.exchange_code(exchange("a-code-0123456789"), config)
    kept = Credentials(access_token="old-token-01234567", expires_at_ms=1)
    assert refreshed(meituan, config, kept) == Credentials(access_token="old-token-01234567")


# --------------------------------------------------------------------------- the code flow


def test_the_code_flow_gives_a_token_the_order_api_takes(
    meituan: Platform, fake: FakeMeituan, callback: Callback
) -> None:
    config = isv(fake)
    before_ms = int(time.time() * 1000)
    credentials = authorized(meituan, config, callback)
    after_ms = int(time.time() * 1000)
    assert credentials.refresh_token
    assert credentials.expires_at_ms is not None
    assert (
        before_ms + LIFETIME_S * 1000 <= credentials.expires_at_ms <= after_ms + LIFETIME_S * 1000
    )
    page, token = fake.calls_to("oauth/authorize")[0], fake.calls_to("oauth/token")[0]
    assert page.sig_ok
    assert page.params["app_poi_code"] == STORE_CODE
    assert page.params["response_type"] == "code"
    assert token.method == "POST"
    assert token.sig_ok
    assert token.params["grant_type"] == "authorization_code"
    assert token.params["redirect_uri"] == callback.uri
    fake.reset(orders=False)
    assert meituan.outbound_action(action(), with_token(config, credentials.access_token)) == DONE
    [call] = fake.calls
    assert call.system["access_token"] == credentials.access_token


def test_the_consent_page_url_is_signed(
    meituan: Platform, fake: FakeMeituan, callback: Callback
) -> None:
    request = AuthorizationRequest(store_id=STORE, state=STATE, redirect_uri=callback.uri)
    url = meituan.authorize_url(request, isv(fake)).url
    assert url is not None
    base, _, query = url.partition("?")
    params = dict(parse_qsl(query))
    assert base == fake.api_base + "oauth/authorize"
    assert params["app_id"] == FIXTURE_APP_ID
    assert params["state"] == STATE
    assert params["redirect_uri"] == callback.uri
    assert params["sig"] == sig(base, params, FIXTURE_SECRET)


def test_a_code_works_once(meituan: Platform, fake: FakeMeituan, callback: Callback) -> None:
    config = isv(fake)
    code = consent(meituan, config, callback)
    meituan.exchange_code(exchange(code, callback.uri), config)
    for again in (code, "never-issued-0123456789"):
        with pytest.raises(PlatformRejected) as refused:
            meituan.exchange_code(exchange(again, callback.uri), config)
        assert refused.value.code == "705"


def test_the_code_grant_needs_a_code(meituan: Platform, fake: FakeMeituan) -> None:
    with pytest.raises(PlatformRejected) as refused:
        meituan.exchange_code(exchange(None), isv(fake))
    assert refused.value.code == "NO_CODE"
    assert fake.calls == []


# --------------------------------------------------------------------------- refresh, revoke


def test_a_refresh_rotates_both_tokens(
    meituan: Platform, fake: FakeMeituan, callback: Callback
) -> None:
    config = isv(fake)
    first = authorized(meituan, config, callback)
    second = refreshed(meituan, config, first)
    assert second.access_token != first.access_token
    assert second.refresh_token not in (None, first.refresh_token)
    [call] = fake.calls_to("oauth/token")[1:]
    assert call.params == {"grant_type": "refresh_token", "refresh_token": first.refresh_token}
    assert call.sig_ok
    with pytest.raises(PlatformRejected):
        refreshed(meituan, config, first)
    old = meituan.outbound_action(action(), with_token(config, first.access_token))
    assert (old.outcome, old.code) == (ActionOutcome.REJECTED, "4001")
    assert meituan.outbound_action(action(), with_token(config, second.access_token)) == DONE


def test_a_revoked_store_is_refused_until_it_consents_again(
    meituan: Platform, fake: FakeMeituan, callback: Callback
) -> None:
    config = isv(fake)
    credentials = authorized(meituan, config, callback)
    fake.revoke(STORE_CODE)
    with pytest.raises(PlatformRejected) as refused:
        refreshed(meituan, config, credentials)
    assert refused.value.code == "4001"
    result = meituan.outbound_action(action(), with_token(config, credentials.access_token))
    assert (result.outcome, result.code) == (ActionOutcome.REJECTED, "4001")
    again = authorized(meituan, config, callback)
    assert refreshed(meituan, config, again).access_token != again.access_token


def test_a_store_without_a_refresh_token_must_be_authorized_again(
    meituan: Platform, fake: FakeMeituan
) -> None:
    bare = Credentials(access_token="only-an-access-token")
    with pytest.raises(PlatformRejected) as refused:
        refreshed(meituan, isv(fake), bare)
    assert refused.value.code == "NO_REFRESH_TOKEN"
    assert fake.calls == []


# --------------------------------------------------------------------------- outages


def test_an_outage_is_transient(meituan: Platform, fake: FakeMeituan, callback: Callback) -> None:
    config = isv(fake)
    credentials = authorized(meituan, config, callback)
    code = consent(meituan, config, callback)
    fake.token_outage(503)
    calls: list[Callable[[], Credentials]] = [
        partial(meituan.exchange_code, exchange(code, callback.uri), config),
        partial(refreshed, meituan, config, credentials),
    ]
    for call in calls:
        with pytest.raises(TransientPlatformError) as transient:
            call()
        assert transient.value.code == "http_503"
    fake.reset(orders=False)
    assert meituan.exchange_code(exchange(code, callback.uri), config).access_token


@pytest.mark.parametrize(
    "answer",
    [
        FakeAnswer.error(700, "系统错误"),
        FakeAnswer(body='{"status": 711, "message": "接口调用过于频繁"}'),
        FakeAnswer(body="<html>gateway</html>"),
        FakeAnswer.dropped(),
    ],
)
def test_a_token_endpoint_asking_to_retry_is_transient(
    meituan: Platform, fake: FakeMeituan, callback: Callback, answer: FakeAnswer
) -> None:
    config = isv(fake)
    credentials = authorized(meituan, config, callback)
    fake.script("oauth/token", answer)
    with pytest.raises(TransientPlatformError):
        refreshed(meituan, config, credentials)
    assert refreshed(meituan, config, credentials).access_token != credentials.access_token


def test_an_unreachable_platform_is_transient(meituan: Platform, callback: Callback) -> None:
    with FakeMeituan(app_type="isv") as stopped:
        config = isv(stopped)
        credentials = authorized(meituan, config, callback)
    with pytest.raises(TransientPlatformError) as transient:
        refreshed(meituan, config, credentials)
    assert transient.value.code == "NETWORK"


# --------------------------------------------------------------------------- the direct grant


def test_the_direct_grant_needs_no_consent(meituan: Platform, fake: FakeMeituan) -> None:
    config = isv(fake, isv_grant="direct")
    request = AuthorizationRequest(store_id=STORE, state=STATE, redirect_uri="https://b.example/cb")
    assert meituan.authorize_url(request, config).url is None
    credentials = meituan.exchange_code(exchange(None), config)
    [call] = fake.calls
    assert (call.method, call.path, call.sig_ok) == ("GET", "oauth/authorize", True)
    assert call.params == {"app_poi_code": STORE_CODE, "response_type": "token"}
    assert refreshed(meituan, config, credentials).access_token != credentials.access_token
    bare = Credentials(access_token=credentials.access_token)
    assert refreshed(meituan, config, bare).refresh_token
    fake.revoke(STORE_CODE)
    with pytest.raises(PlatformRejected):
        meituan.exchange_code(exchange(None), config)


# --------------------------------------------------------------------------- tokens in API calls


def test_every_call_of_an_isv_store_carries_its_token_signed(
    meituan: Platform, fake: FakeMeituan
) -> None:
    token = str(fake.issue_tokens(STORE_CODE)["access_token"])
    config = with_token(isv(fake), token)
    assert meituan.outbound_action(action(), config) == DONE
    fetched = meituan.fetch_order(OrderRef(store_id=STORE, platform_order_id=ORDER_ID), config)
    assert fetched is not None
    verified = meituan.verify_action(action(), config)
    assert verified.outcome is ActionOutcome.DONE
    assert [call.path for call in fake.calls] == [
        "order/confirm", "order/viewstatus", "order/getOrderDetail", "order/viewstatus",
    ]  # fmt: skip
    for call in fake.calls:
        assert call.sig_ok
        assert call.system["access_token"] == token
        unsigned = {**call.params, "app_id": call.system["app_id"]}
        unsigned["timestamp"] = call.system["timestamp"]
        assert call.system["sig"] != sig(fake.api_base + call.path, unsigned, FIXTURE_SECRET)


def test_a_kept_token_wins_over_the_static_one(meituan: Platform, fake: FakeMeituan) -> None:
    static = str(fake.issue_tokens(STORE_CODE)["access_token"])
    kept = str(fake.issue_tokens(STORE_CODE)["access_token"])
    config = isv(fake)
    stores = {**config.stores, STORE: {**config.stores[STORE], "access_token": static}}
    config = config.model_copy(update={"stores": stores})
    assert meituan.outbound_action(action(), config) == DONE
    assert meituan.outbound_action(action(Action.MEAL_READY), with_token(config, kept)) == DONE
    assert [call.system["access_token"] for call in fake.calls] == [static, kept]


def test_an_isv_store_without_a_token_is_refused_before_any_call(
    meituan: Platform, fake: FakeMeituan
) -> None:
    config = isv(fake)
    result = meituan.outbound_action(action(), config)
    assert (result.outcome, result.code) == (ActionOutcome.REJECTED, "NO_TOKEN")
    assert result.message is not None
    assert "waimai-bridge auth url" in result.message
    with pytest.raises(TransientPlatformError) as transient:
        meituan.fetch_order(OrderRef(store_id=STORE, platform_order_id=ORDER_ID), config)
    assert transient.value.code == "NO_TOKEN"
    assert meituan.verify_action(action(), config).outcome is ActionOutcome.UNKNOWN
    assert fake.calls == []


# --------------------------------------------------------------------------- nothing leaks


def test_no_secret_token_or_code_shows_in_logs_or_errors(
    meituan: Platform, fake: FakeMeituan, callback: Callback, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = isv(fake)
    errors: list[BaseException] = []
    hidden = [FIXTURE_SECRET]

    def expect_error(call: Callable[[], object]) -> None:
        with pytest.raises(PlatformError) as raised:
            call()
        errors.append(raised.value)

    code = consent(meituan, config, callback)
    credentials = meituan.exchange_code(exchange(code, callback.uri), config)
    hidden += [code, credentials.access_token, str(credentials.refresh_token)]
    expect_error(lambda: meituan.exchange_code(exchange(code, callback.uri), config))
    echo = f"refresh_token {credentials.refresh_token} 无效, secret {FIXTURE_SECRET}"
    fake.script("oauth/token", FakeAnswer.error(4001, echo))
    expect_error(lambda: refreshed(meituan, config, credentials))
    fake.script_any(FakeAnswer.error(4001, f"token {credentials.access_token} 已过期"))
    result = meituan.outbound_action(action(), with_token(config, credentials.access_token))
    fake.revoke(STORE_CODE)
    expect_error(lambda: refreshed(meituan, config, credentials))
    fake.token_outage(502)
    expect_error(lambda: refreshed(meituan, config, credentials))
    texts = [record.getMessage() for record in caplog.records if not quieted(record)]
    texts += [str(error) for error in errors] + [repr(error) for error in errors]
    texts += [str(result.message), repr(result)]
    leaks = [(value, text) for value in hidden for text in texts if value in text]
    assert leaks == []
    assert "***" in str(errors[1])
    assert "***" in str(result.message)


def quieted(record: logging.LogRecord) -> bool:
    """Whether the bridge never writes ``record``: a line below WARNING of a logger it
    keeps quiet, since such lines hold request URLs with their queries."""
    quiet = any(record.name == name or record.name.startswith(f"{name}.") for name in QUIET_LOGGERS)
    return quiet and record.levelno < logging.WARNING


# --------------------------------------------------------------------------- reading answers


@given(lifetime=st.integers(min_value=1, max_value=10**10), as_text=st.booleans())
def test_the_expiry_counts_from_the_request(lifetime: int, as_text: bool) -> None:
    answer = {
        "status": 0,
        "access_token": "t",
        "expires_in": str(lifetime) if as_text else lifetime,
    }
    credentials = oauth.credentials(answer, 1_000)
    assert credentials.expires_at_ms == 1_000 + lifetime * 1000
    assert credentials.refresh_token is None


NOT_DIGITS = st.text(max_size=5).filter(lambda text: not (text.isascii() and text.isdigit()))


@given(
    expires_in=st.one_of(
        st.none(), st.booleans(), st.integers(max_value=0), st.floats(), NOT_DIGITS, st.just("0")
    )
)
def test_an_unreadable_lifetime_falls_back(expires_in: object) -> None:
    answer = {"access_token": "t", "refresh_token": "r", "expires_in": expires_in}
    credentials = oauth.credentials(answer, 0)
    assert credentials.expires_at_ms == facts.FALLBACK_TOKEN_LIFETIME_SECONDS * 1000
    assert credentials.refresh_token == "r"


@given(status=st.integers(min_value=-(10**6), max_value=10**6).filter(lambda s: s != 0))
def test_a_non_zero_status_is_a_refusal(status: int) -> None:
    refusal = oauth.refusal(oauth.TOKEN, {"status": status, "message": "x"}, ())
    expected = TransientPlatformError if str(status) in {"700", "711"} else PlatformRejected
    assert type(refusal) is expected
    assert refusal is not None
    assert refusal.code == str(status)
    assert oauth.refusal(oauth.TOKEN, {"status": 0, "access_token": "t"}, ()) is None
