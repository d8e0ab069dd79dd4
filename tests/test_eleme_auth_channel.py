"""An authorized Eleme store's channel against the fake over real HTTP: the stored access
token used over the static one, the type-100 push as a notice that the store is
unauthorized, and no token, code or secret in a log line or an error."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from waimai_bridge_eleme.testing import FakeAnswer, FakeEleme

from tests.test_eleme_auth import (
    CONFIG,
    CONFIRM,
    ORDER,
    OTHER_SHOP,
    SECRET,
    SHOP,
    STATIC,
    against,
    authorized,
    consent,
    exchange,
    refresh,
)
from waimai_bridge.authorization import Credentials
from waimai_bridge.errors import (
    BadSignature,
    PlatformError,
    PlatformRejected,
    TransientPlatformError,
    UnknownStore,
)
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import ActionOutcome, ChannelNotice, InboundRequest
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.pulled import OrderRef, PullRequest

QUIET = ("httpx", "httpcore")  # the bridge never writes their lines below WARNING


@pytest.fixture(scope="module")
def eleme() -> Platform:
    return PluginRegistry.discover(blocked=()).platform("eleme")


@pytest.fixture
def fake() -> Iterator[FakeEleme]:
    with FakeEleme.for_fixtures() as running:
        running.sign_in(SHOP)
        yield running


# --------------------------------------------------------------------------- the store's token


def test_the_stored_access_token_is_used_over_the_static_one(
    eleme: Platform, fake: FakeEleme
) -> None:
    config = against(fake)
    issued = authorized(eleme, config).access_token
    stored = config.model_copy(update={"access_tokens": {"S001": issued}})
    fake.put_order({"id": ORDER, "orderId": ORDER, "shopId": SHOP, "status": "valid"})
    fake.reset()

    eleme.outbound_action(CONFIRM, stored)
    eleme.pull_events(PullRequest(store_id="S001", since_ms=0), stored)
    eleme.fetch_order(OrderRef(store_id="S001", platform_order_id=ORDER), stored)
    eleme.outbound_action(CONFIRM.model_copy(update={"store_id": "S002"}), stored)

    tokens = [(call.action, call.token) for call in fake.calls]
    assert tokens == [
        ("eleme.order.confirmOrderLite", issued),
        ("eleme.msgNew.getPushFailMsg", ""),
        ("eleme.message.getNonReachedOMessages", issued),
        ("eleme.order.getOrder", issued),
        ("eleme.order.confirmOrderLite", str(CONFIG.stores["S002"]["token"])),
    ]


def test_a_store_with_neither_token_is_refused_without_a_call(
    eleme: Platform, fake: FakeEleme
) -> None:
    bare = against(fake).model_copy(update={"stores": {"S001": {"shop_id": SHOP}}})
    issued = authorized(eleme, bare).access_token

    refused = eleme.outbound_action(CONFIRM, bare)
    assert (refused.outcome, refused.code) == (ActionOutcome.REJECTED, "NO_TOKEN")
    assert fake.calls == []
    stored = bare.model_copy(update={"access_tokens": {"S001": issued}})
    assert eleme.outbound_action(CONFIRM, stored).outcome is ActionOutcome.DONE
    assert [call.token for call in fake.calls] == [issued]


# --------------------------------------------------------------------------- type 100


def inbound(body: bytes) -> InboundRequest:
    return InboundRequest(
        method="POST",
        url="https://bridge.example.com/webhooks/eleme",
        kind=None,
        query=[],
        headers={"content-type": "application/json;charset=utf-8"},
        body=body,
        received_at_ms=int(time.time() * 1000),
    )


@pytest.mark.parametrize(("shop", "store"), [(SHOP, "S001"), (OTHER_SHOP, "S002")])
def test_a_type_100_push_is_a_notice_that_the_store_is_unauthorized(
    eleme: Platform, fake: FakeEleme, shop: int, store: str
) -> None:
    parsed = eleme.parse_event(inbound(fake.deauthorization_push(shop)), CONFIG)

    assert parsed is not None
    assert parsed.reply.body == '{"message":"ok"}'
    assert parsed.events == []
    assert parsed.notices == [ChannelNotice(store_id=store, authorized=False)]


def test_a_type_100_push_of_an_unbound_shop_or_forged_is_refused(
    eleme: Platform, fake: FakeEleme
) -> None:
    with pytest.raises(UnknownStore):
        eleme.parse_event(inbound(fake.deauthorization_push(999)), CONFIG)
    envelope = json.loads(fake.deauthorization_push(SHOP))
    envelope["shopId"] = OTHER_SHOP
    with pytest.raises(BadSignature):
        eleme.parse_event(inbound(json.dumps(envelope).encode()), CONFIG)


# --------------------------------------------------------------------------- secrets


def test_no_token_code_or_secret_shows_in_a_log_line_or_an_error(
    eleme: Platform, fake: FakeEleme, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = against(fake, timeout_seconds=0.5)
    errors: list[BaseException] = []
    hidden: list[str] = [SECRET, STATIC]

    code = consent(eleme, config)
    credentials = eleme.exchange_code(exchange(code), config)
    hidden += [code, credentials.access_token, str(credentials.refresh_token)]
    renewed = eleme.refresh_credentials(refresh(credentials), config)
    hidden += [renewed.access_token, str(renewed.refresh_token)]
    # a description quoting what was sent, an outage, a used code and refresh token
    fake.script_token(FakeAnswer.error("invalid_grant", f"bad {renewed.refresh_token} {SECRET}"))
    fake.script_token(FakeAnswer.http(500, f"trace: {code}"), FakeAnswer.drop())
    calls: list[Callable[[], Credentials]] = [
        partial(eleme.refresh_credentials, refresh(renewed), config),
        partial(eleme.exchange_code, exchange(code), config),
        partial(eleme.refresh_credentials, refresh(renewed), config),
        partial(eleme.exchange_code, exchange(code), config),
        partial(eleme.refresh_credentials, refresh(credentials), config),
    ]
    for call in calls:
        with pytest.raises(PlatformError) as raised:
            call()
        errors.append(raised.value)
    fake.revoke(shop_id=SHOP)
    stored = config.model_copy(update={"access_tokens": {"S001": renewed.access_token}})
    result = eleme.outbound_action(CONFIRM, stored)

    assert [type(error) for error in errors] == [
        PlatformRejected,
        TransientPlatformError,
        TransientPlatformError,
        PlatformRejected,
        PlatformRejected,
    ]
    texts = [f"{error!s} {error!r} {getattr(error, 'message', '')}" for error in errors]
    texts.append(result.model_dump_json())
    texts += [
        record.getMessage()
        for record in caplog.records
        if record.name.split(".")[0] not in QUIET or record.levelno >= logging.WARNING
    ]
    assert "***" in texts[0]  # the description was kept, blanked out
    for text in texts:
        for value in hidden:
            assert value not in text
