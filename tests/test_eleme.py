"""The Eleme plugin through the core's checked hook calls: every fixture parsed, mapped and
priced as expected, refusals, signatures, and every action against the fake Eleme API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from waimai_bridge_eleme import api, examples, prices
from waimai_bridge_eleme.signing import push_signature, request_signature
from waimai_bridge_eleme.testing import FakeAnswer, FakeEleme, push_body, push_envelope

from waimai_bridge.errors import BadSignature, UndecodablePush, UnknownStore
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import (
    ActionOutcome,
    ActionRequest,
    InboundRequest,
    NativeEvent,
    OrderDetails,
    PluginConfig,
)
from waimai_bridge.plugins import PluginRegistry

FIXTURES = resources.files("waimai_bridge_eleme") / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))
    return loaded


def names(prefix: str = "") -> list[str]:
    return sorted(
        entry.name.removesuffix(".json")
        for entry in FIXTURES.iterdir()
        if entry.name.endswith(".json") and entry.name != "config.json"
        if entry.name.startswith(prefix)
    )


PUSHES = [name for name in names() if not name.startswith("action-")]
ACTIONS = names("action-")
CONFIG = PluginConfig.model_validate({"platform": "eleme", **fixture("config")})
SETTINGS = CONFIG.settings
SHOP = 160012345


@pytest.fixture(scope="module")
def eleme() -> Platform:
    return PluginRegistry.discover(blocked=()).platform("eleme")


def inbound(raw: dict[str, Any], body: bytes | None = None) -> InboundRequest:
    return InboundRequest(
        method=raw["method"],
        url="https://bridge.example.com/webhooks/eleme",
        kind=raw["kind"],
        query=[tuple(pair) for pair in raw["query"]],
        headers=raw["headers"],
        body=raw["body"].encode("utf-8") if body is None else body,
        received_at_ms=1_716_181_300_000,
    )


@pytest.mark.parametrize("name", PUSHES)
def test_each_push_fixture_parses_maps_and_prices_as_expected(eleme: Platform, name: str) -> None:
    case = fixture(name)
    expect = case["expect"]
    parsed = eleme.parse_event(inbound(case["request"]), CONFIG)
    assert parsed is not None
    assert parsed.reply.model_dump(include={"status", "body"}) == expect["reply"]
    keys = ("store_id", "platform_order_id", "native_code", "idempotency_key", "platform_time_ms")
    assert [e.model_dump(include=set(keys)) for e in parsed.events] == expect["events"]
    states = [eleme.map_state(e).model_dump(mode="json") for e in parsed.events]
    assert states == expect["states"]
    prices = [eleme.price_breakdown(e, CONFIG) for e in parsed.events]
    priced = [p.model_dump(mode="json") for p in prices if p is not None]
    assert priced == ([expect["price"]] if expect["price"] else [])


@pytest.mark.parametrize("name", [n for n in PUSHES if fixture(n)["expect"]["events"]])
def test_a_tampered_push_is_refused(eleme: Platform, name: str) -> None:
    envelope = json.loads(fixture(name)["request"]["body"])
    for key in ("message", "shopId", "type", "timestamp", "requestId", "signature"):
        damaged = dict(envelope)
        damaged[key] = f"{damaged[key]}0" if key != "signature" else "0" * 32
        body = json.dumps(damaged, ensure_ascii=False).encode()
        with pytest.raises(BadSignature) as refused:
            eleme.parse_event(inbound(fixture(name)["request"], body), CONFIG)
        assert "signature" in str(refused.value)


POST: dict[str, Any] = {"method": "POST", "kind": None, "query": [], "headers": {}, "body": ""}


def signed(push_type: int, message: dict[str, Any] | str, **overrides: Any) -> InboundRequest:
    options: dict[str, Any] = {
        "app_id": SETTINGS["app_id"], "shop_id": SHOP, "secret": SETTINGS["app_secret"],
    } | overrides  # fmt: skip
    body = push_body(push_type, message, **options)
    return inbound(POST, body)


STATUS = {"orderId": "1", "state": "valid", "shopId": SHOP, "updateTime": 1716181200}


@pytest.mark.parametrize(
    ("request_", "error", "problem"),
    [
        (signed(12, STATUS, app_id=1), BadSignature, "appId 1"),
        (signed(12, STATUS, secret="not-the-secret"), BadSignature, "signature"),
        (signed(12, STATUS, shop_id=99), UnknownStore, "shopId 99"),
        (signed(999, STATUS), UndecodablePush, "type 999"),
        (signed(12, "not json"), UndecodablePush, "not valid JSON"),
        (signed(12, {"state": "valid"}), UndecodablePush, "lacks orderId"),
        (signed(10, {"orderId": "1", "totalPrice": 1, "originalPrice": 1, "income": 1,
                     "groups": [], "deliverFee": 0.001}), UndecodablePush, "deliverFee"),
        (signed(30, {"orderId": "1", "totalPrice": "lots"}), UndecodablePush, "lots"),
    ],
    ids=["app-id", "secret", "shop", "type", "message", "order-id", "fen", "refund"],
)  # fmt: skip
def test_bad_pushes_are_refused_with_a_clear_error(
    eleme: Platform, request_: InboundRequest, error: type[Exception], problem: str
) -> None:
    with pytest.raises(error) as refused:
        eleme.parse_event(request_, CONFIG)
    assert problem in str(refused.value)
    assert str(SETTINGS["app_secret"]) not in str(refused.value)


def resigned(changes: dict[str, Any], *, without: str | None = None) -> InboundRequest:
    """A status push whose envelope is changed, then signed again with the app's secret."""
    envelope = push_envelope(12, STATUS, app_id=SETTINGS["app_id"], shop_id=SHOP,
                             secret=SETTINGS["app_secret"])  # fmt: skip
    del envelope["signature"]
    envelope = {key: value for key, value in {**envelope, **changes}.items() if key != without}
    envelope["signature"] = push_signature(envelope, SETTINGS["app_secret"])
    return inbound(POST, json.dumps(envelope).encode())


@pytest.mark.parametrize(
    ("request_", "error", "problem"),
    [
        (resigned({}, without="appId"), BadSignature, "no appId"),
        (resigned({"appId": "9" * 100_000}), BadSignature, "appId"),
        (resigned({"shopId": [SHOP]}), UndecodablePush, "shopId"),
        (resigned({"shopId": {"id": SHOP}}), UndecodablePush, "shopId"),
        (resigned({"shopId": "9" * 100_000}), UndecodablePush, "shopId"),
        (resigned({"shopId": 2**64}), UndecodablePush, "shopId"),
        (resigned({"type": "x" * 100_000}), UndecodablePush, "type"),
        (resigned({"type": [[[12]]]}), UndecodablePush, "type"),
        (resigned({"type": "²"}), UndecodablePush, "type"),
        (resigned({"type": "1" * 5000}), UndecodablePush, "type"),
    ],
    ids=["no-app-id", "long-app-id", "shop-list", "shop-object", "long-shop", "huge-shop",
         "long-type", "nested-type", "superscript-type", "type-past-the-digit-limit"],
)  # fmt: skip
def test_a_signed_envelope_of_the_wrong_shape_is_refused_in_a_few_words(
    eleme: Platform, request_: InboundRequest, error: type[Exception], problem: str
) -> None:
    with pytest.raises(error) as refused:
        eleme.parse_event(request_, CONFIG)
    assert problem in str(refused.value)
    assert len(str(refused.value)) < 200


def test_amounts_the_order_does_not_state_are_null_not_zero(eleme: Platform) -> None:
    message = examples.new_order("1", SHOP)
    stated = eleme.price_breakdown(native_order(message), CONFIG)
    assert stated is not None
    assert (stated.commission, stated.merchant_income) == (450, 2750)
    unstated = {k: v for k, v in message.items() if k not in ("serviceFee", "income")}
    price = eleme.price_breakdown(native_order(unstated), CONFIG)
    assert price is not None
    assert (price.commission, price.merchant_income) == (None, None)
    assert price.model_dump(exclude={"commission", "merchant_income"}) == stated.model_dump(
        exclude={"commission", "merchant_income"}
    )
    free = eleme.price_breakdown(native_order({**message, "serviceFee": 0.0}), CONFIG)
    assert free is not None
    assert free.commission == 0
    for required in ("totalPrice", "originalPrice"):
        lacking = {k: v for k, v in message.items() if k != required}
        with pytest.raises(ValueError, match=f"{required} is missing"):
            prices.breakdown(lacking)


def native_order(message: dict[str, Any]) -> NativeEvent:
    return NativeEvent(platform="eleme", store_id="S001", platform_order_id="1",
                       native_code="10", idempotency_key="10:1", platform_time_ms=1,
                       payload=message)  # fmt: skip


def test_a_push_without_a_signature_is_unauthorised_not_undecodable(eleme: Platform) -> None:
    body = json.dumps({"requestId": "1", "type": 12}).encode()
    with pytest.raises(BadSignature, match="no signature"):
        eleme.parse_event(inbound(POST, body), CONFIG)


def test_a_push_to_a_kind_url_is_not_elemes(eleme: Platform) -> None:
    raw: dict[str, Any] = {
        "method": "POST", "kind": "orders", "query": [], "headers": {}, "body": "{}",
    }  # fmt: skip
    assert eleme.parse_event(inbound(raw), CONFIG) is None


def test_the_official_request_signature_example() -> None:
    # platforms.md §2.2: the worked example of Eleme's "API调用协议签名算法"
    assert (
        request_signature(
            "eleme.order.getOrder",
            "ed72bdaef7b635ecf9279147d76d6a55",
            {"app_key": "wYO4C8ZLzB", "timestamp": 1486217703},
            {"orderId": "100027526535707064"},
            "8e81ef8b73593d6b24e0cd9f11cbe3132d11ab8e",
        )
        == "B450D7598455D163488A2ABEB1E0E0C5"
    )


@given(st.dictionaries(st.sampled_from(["requestId", "message", "type", "userId"]),
                       st.one_of(st.text(), st.integers()), min_size=1))  # fmt: skip
def test_the_push_signature_ignores_key_order_and_covers_every_value(
    envelope: dict[str, Any],
) -> None:
    signature = push_signature(envelope, "s")
    assert push_signature(dict(reversed(list(envelope.items()))), "s") == signature
    assert push_signature({**envelope, "signature": "x"}, "s") == signature
    key = next(iter(envelope))
    assert push_signature({**envelope, key: f"{envelope[key]}!"}, "s") != signature


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("sold_out", ("foodSoldOut", "")),
        ("too_busy: 午高峰", ("restaurantTooBusy", "午高峰")),
        ("forceRejectOrder: 风控", ("forceRejectOrder", "风控")),
        ("用户要求取消", ("others", "用户要求取消")),
        (None, ("others", "")),
    ],
)
def test_a_cancel_reason_becomes_an_eleme_type_and_remark(
    reason: str | None, expected: tuple[str, str]
) -> None:
    assert api.cancel_reason(reason) == expected


# --------------------------------------------------------------------------- actions


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeEleme]:
    tokens = {str(binding["token"]) for binding in CONFIG.stores.values()}
    with FakeEleme(
        app_key=str(SETTINGS["app_key"]), app_secret=str(SETTINGS["app_secret"]), tokens=tokens
    ) as running:
        yield running


def against(fake: FakeEleme, **settings: Any) -> PluginConfig:
    return CONFIG.model_copy(
        update={"settings": {**SETTINGS, "api_base": fake.api_base, **settings}}
    )


@pytest.mark.parametrize("name", ACTIONS)
def test_each_action_reaches_the_fake_correctly_signed(
    eleme: Platform, fake: FakeEleme, name: str
) -> None:
    case = fixture(name)
    fake.reset()
    result = eleme.outbound_action(ActionRequest.model_validate(case["action"]), against(fake))
    assert result.model_dump(mode="json") == case["expect"]["result"]
    [call] = fake.calls
    assert call.signature_ok
    assert (call.action, call.params) == (case["expect"]["path"], case["expect"]["params"])
    assert call.token == CONFIG.stores["S001"]["token"]


CONFIRM = ActionRequest(
    action_id="A1", action="confirm", platform_order_id="3084512398765432101",
    store_id="S001", attempt=1,
)  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "outcome", "code"),
    [
        (FakeAnswer.error("SERVER_ERROR", "服务器错误"), ActionOutcome.TRANSIENT, "SERVER_ERROR"),
        (FakeAnswer.error("EXCEED_LIMIT", "限流"), ActionOutcome.TRANSIENT, "EXCEED_LIMIT"),
        (FakeAnswer.http(502), ActionOutcome.TRANSIENT, "HTTP_502"),
        # sent, and the answer lost: it may have taken effect (verify_action reads the order)
        (FakeAnswer.slow(2.0), ActionOutcome.UNKNOWN, "TIMEOUT"),
        (FakeAnswer.drop(), ActionOutcome.UNKNOWN, "NETWORK"),
        (FakeAnswer.error("BIZ_ORDER_STATUS_ERROR", "订单状态不正确"), ActionOutcome.REJECTED,
         "BIZ_ORDER_STATUS_ERROR"),
        (FakeAnswer.error("VALIDATION_FAILED", "参数错误"), ActionOutcome.REJECTED,
         "VALIDATION_FAILED"),
        (FakeAnswer.error("UNAUTHORIZED", "token 无效"), ActionOutcome.REJECTED, "UNAUTHORIZED"),
        (FakeAnswer.http(404, "no"), ActionOutcome.REJECTED, "HTTP_404"),
    ],
    ids=lambda value: getattr(value, "kind", str(value)),
)  # fmt: skip
def test_platform_errors_are_classified(
    eleme: Platform, fake: FakeEleme, answer: FakeAnswer, outcome: ActionOutcome, code: str
) -> None:
    fake.reset()
    fake.script("eleme.order.confirmOrderLite", answer)
    result = eleme.outbound_action(CONFIRM, against(fake, timeout_seconds=0.5))
    assert (result.outcome, result.code) == (outcome, code)
    assert result.message
    assert str(SETTINGS["app_secret"]) not in result.message


def test_the_fakes_own_refusals_are_final(eleme: Platform, fake: FakeEleme) -> None:
    fake.reset()
    wrong_secret = eleme.outbound_action(CONFIRM, against(fake, app_secret="wrong"))
    assert (wrong_secret.outcome, wrong_secret.code) == ("rejected", "INVALID_SIGNATURE")
    no_token = CONFIG.model_copy(
        update={"settings": {**SETTINGS, "api_base": fake.api_base}, "stores": {"S001": {}}}
    )
    assert eleme.outbound_action(CONFIRM, no_token).code == "NO_TOKEN"
    assert len(fake.calls) == 1


def test_an_unsupported_action_is_not_in_the_manifest(eleme: Platform) -> None:
    assert "meal_ready" not in eleme.manifest.actions


def test_an_order_push_without_income_is_read_with_unknown_income(eleme: Platform) -> None:
    message = {k: v for k, v in examples.new_order("1", SHOP).items() if k != "income"}
    parsed = eleme.parse_event(signed(10, message), CONFIG)
    assert parsed is not None
    [event] = parsed.events
    price = eleme.price_breakdown(event, CONFIG)
    assert price is not None
    assert price.merchant_income is None


def test_a_new_order_gives_its_day_sequence_number_and_remark(eleme: Platform) -> None:
    parsed = eleme.parse_event(inbound(fixture("sample-order-created")["request"]), CONFIG)
    assert parsed is not None
    [event] = parsed.events
    assert eleme.order_details(event, CONFIG) == OrderDetails(day_seq=12, remark="少放辣")
    message = examples.new_order("1", SHOP)
    unstated = {k: v for k, v in message.items() if k not in ("daySn", "description")}
    assert eleme.order_details(native_order(unstated), CONFIG) == OrderDetails()
    status = native_order(STATUS).model_copy(update={"native_code": "12"})
    assert eleme.order_details(status, CONFIG) is None


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"daySn": "17"}, OrderDetails(day_seq=17, remark="少辣")),
        ({"daySn": -1}, OrderDetails(day_seq=None, remark="少辣")),
        ({"daySn": 10**30}, OrderDetails(day_seq=None, remark="少辣")),
        ({"daySn": 12.0}, OrderDetails(day_seq=None, remark="少辣")),
        ({"daySn": True}, OrderDetails(day_seq=None, remark="少辣")),
        ({"description": ["少辣"]}, OrderDetails(day_seq=12, remark=None)),
        ({"description": "辣" * 5000}, OrderDetails(day_seq=12, remark="辣" * 500)),
        ({"description": ""}, OrderDetails(day_seq=12, remark=None)),
    ],
    ids=["digits", "negative", "huge", "float", "bool", "list", "huge remark", "empty"],
)
def test_hostile_details_are_bounded_never_refused(
    eleme: Platform, changes: dict[str, Any], expected: OrderDetails
) -> None:
    message = examples.new_order("1", SHOP) | {"daySn": 12, "description": "少辣"} | changes
    parsed = eleme.parse_event(signed(10, message), CONFIG)  # the push is taken
    assert parsed is not None
    assert eleme.order_details(parsed.events[0], CONFIG) == expected
