"""The own_pos plugin through the core's checked hook calls: every fixture parsed, mapped
and priced as expected; tampered, replayed, misaddressed and malformed pushes refused with
the right exception and a message naming the problem."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from waimai_bridge_own_pos import examples
from waimai_bridge_own_pos.signing import signature
from waimai_bridge_own_pos.testing import FIXTURE_SETTINGS, push_body, signed_push

from waimai_bridge.errors import BadSignature, UndecodablePush, UnknownStore
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import (
    InboundRequest,
    KitchenStep,
    PlatformState,
    PluginConfig,
    StateChange,
)
from waimai_bridge.plugins import PluginRegistry

FIXTURES = resources.files("waimai_bridge_own_pos") / "fixtures"


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text("utf-8"))
    return loaded


PUSHES = sorted(
    entry.name.removesuffix(".json")
    for entry in FIXTURES.iterdir()
    if entry.name.endswith(".json") and entry.name != "config.json"
)
CONFIG = PluginConfig.model_validate({"platform": "own_pos", **fixture("config")})
SECRET = str(FIXTURE_SETTINGS["secret"])
T = 1_716_181_200
NOW_MS = T * 1000 + 1_250


@pytest.fixture(scope="module")
def own_pos() -> Platform:
    return PluginRegistry.discover(blocked=()).platform("own_pos")


def inbound(raw: dict[str, Any]) -> InboundRequest:
    return InboundRequest(
        method=raw["method"],
        url="https://bridge.example.com/webhooks/own_pos",
        kind=raw["kind"],
        query=[tuple(pair) for pair in raw["query"]],
        headers=raw["headers"],
        body=raw["body"].encode("utf-8"),
        received_at_ms=raw["received_at_ms"],
    )


def request(
    body: bytes, headers: dict[str, str], *, received_at_ms: int = NOW_MS
) -> InboundRequest:
    return InboundRequest(
        method="POST",
        url="https://bridge.example.com/webhooks/own_pos",
        kind=None,
        query=[],
        headers={name.lower(): value for name, value in headers.items()},
        body=body,
        received_at_ms=received_at_ms,
    )


def signed(
    message: dict[str, Any], *, secret: str = SECRET, received_at_ms: int = NOW_MS
) -> InboundRequest:
    """A request carrying ``message`` signed at ``T``."""
    body, headers = signed_push(message, secret=secret, timestamp_s=T)
    return request(body, headers, received_at_ms=received_at_ms)


def test_the_fixtures_cover_every_native_code(own_pos: Platform) -> None:
    codes = {row.code for row in own_pos.manifest.native_codes}
    covered = {
        event["native_code"] for name in PUSHES for event in fixture(name)["expect"]["events"]
    }
    assert covered == codes
    states = {s["state"] for name in PUSHES for s in fixture(name)["expect"]["states"]}
    declared = {int(state) for row in own_pos.manifest.native_codes for state in row.maps_to}
    assert states - {None} == declared


@pytest.mark.parametrize("name", PUSHES)
def test_each_fixture_parses_maps_and_prices_as_expected(own_pos: Platform, name: str) -> None:
    case = fixture(name)
    expect = case["expect"]
    parsed = own_pos.parse_event(inbound(case["request"]), CONFIG)
    assert parsed is not None
    assert parsed.reply.model_dump(include={"status", "body"}) == expect["reply"]
    keys = {"store_id", "platform_order_id", "native_code", "idempotency_key", "platform_time_ms"}
    assert [event.model_dump(include=keys) for event in parsed.events] == expect["events"]
    states = [own_pos.map_state(event).model_dump(mode="json") for event in parsed.events]
    assert states == expect["states"]
    prices = [own_pos.price_breakdown(event, CONFIG) for event in parsed.events]
    priced = [price.model_dump(mode="json") for price in prices if price is not None]
    assert priced == ([expect["price"]] if expect["price"] else [])


@pytest.mark.parametrize("name", [name for name in PUSHES if fixture(name)["expect"]["events"]])
def test_a_tampered_body_or_signature_is_refused(own_pos: Platform, name: str) -> None:
    raw = fixture(name)["request"]
    body = raw["body"]
    headers = raw["headers"]
    damaged = [
        {**raw, "body": body.replace('"event_time_ms":17', '"event_time_ms":18')},
        {**raw, "body": body + " "},
        {**raw, "headers": {**headers, "x-waimai-signature": "0" * 64}},
        {**raw, "headers": {**headers, "x-waimai-timestamp": str(T + 1)}},
    ]
    for case in damaged:
        with pytest.raises(BadSignature, match="X-Waimai-Signature does not verify"):
            own_pos.parse_event(inbound(case), CONFIG)


def test_the_signature_is_the_documented_hmac() -> None:
    # README: hex HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the secret; the value is
    # openssl's: printf '%s' '1716181200.{"a":1}' | openssl dgst -sha256 -hmac k
    expected = "8267e59dfebd8646530265e84bb57d3d2ae6593af1e0a436146caec1f4c27c82"
    assert signature("k", 1716181200, b'{"a":1}') == expected
    assert signature("k", "1716181200", b'{"a":1}') == expected


ACCEPTED = examples.message("order.accepted", "O-1", "POS-001", T * 1000)


def test_an_upper_case_signature_verifies(own_pos: Platform) -> None:
    body, headers = signed_push(ACCEPTED, secret=SECRET, timestamp_s=T)
    headers["X-Waimai-Signature"] = headers["X-Waimai-Signature"].upper()
    parsed = own_pos.parse_event(request(body, headers), CONFIG)
    assert parsed is not None
    assert len(parsed.events) == 1


@pytest.mark.parametrize(
    ("received_at_ms", "problem"),
    [
        ((T + 301) * 1000, "signed 301 s before it arrived, outside the 300 s replay window"),
        ((T + 86_400) * 1000, "signed 86400 s before it arrived"),
        ((T - 301) * 1000, "301 s ahead of the bridge's clock, outside the 300 s window"),
    ],
    ids=["just-too-old", "a-day-old", "too-far-ahead"],
)
def test_a_push_signed_outside_the_window_is_refused_as_a_replay(
    own_pos: Platform, received_at_ms: int, problem: str
) -> None:
    with pytest.raises(BadSignature) as refused:
        own_pos.parse_event(signed(ACCEPTED, received_at_ms=received_at_ms), CONFIG)
    assert problem in str(refused.value)
    assert refused.value.status == 401


@pytest.mark.parametrize("received_at_ms", [(T + 300) * 1000, (T - 300) * 1000, T * 1000])
def test_a_push_signed_within_the_window_is_taken(own_pos: Platform, received_at_ms: int) -> None:
    parsed = own_pos.parse_event(signed(ACCEPTED, received_at_ms=received_at_ms), CONFIG)
    assert parsed is not None
    assert [event.native_code for event in parsed.events] == ["order.accepted"]


def test_the_window_is_configurable(own_pos: Platform) -> None:
    narrow = CONFIG.model_copy(update={"settings": {"secret": SECRET, "max_skew_seconds": 5}})
    with pytest.raises(BadSignature, match="outside the 5 s replay window"):
        own_pos.parse_event(signed(ACCEPTED, received_at_ms=(T + 6) * 1000), narrow)
    default = CONFIG.model_copy(update={"settings": {"secret": SECRET}})
    assert own_pos.parse_event(signed(ACCEPTED, received_at_ms=(T + 300) * 1000), default)


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({}, "no X-Waimai-Timestamp header"),
        ({"X-Waimai-Timestamp": str(T)}, "no X-Waimai-Signature header"),
        ({"X-Waimai-Timestamp": "1716181200.5", "X-Waimai-Signature": "ab"}, "not unix seconds"),
        ({"X-Waimai-Timestamp": "1716181200000", "X-Waimai-Signature": "ab"},
         "does not verify"),
    ],
    ids=["no-timestamp", "no-signature", "float-timestamp", "wrong-signature"],
)  # fmt: skip
def test_a_push_without_valid_headers_is_unauthorised(
    own_pos: Platform, headers: dict[str, str], problem: str
) -> None:
    with pytest.raises(BadSignature, match=problem):
        own_pos.parse_event(request(push_body(ACCEPTED), headers), CONFIG)


def test_another_secret_does_not_verify_and_no_message_shows_the_secret(
    own_pos: Platform,
) -> None:
    with pytest.raises(BadSignature) as refused:
        own_pos.parse_event(signed(ACCEPTED, secret="not-the-secret"), CONFIG)
    assert SECRET not in str(refused.value)
    assert "not-the-secret" not in str(refused.value)


def test_an_unknown_store_is_refused(own_pos: Platform) -> None:
    for code in ("POS-999", "S001", "S003"):  # S001 is "POS-001" to the POS; S003 unbound
        message = {**ACCEPTED, "store_code": code}
        with pytest.raises(UnknownStore, match=f"store_code '{code}'"):
            own_pos.parse_event(signed(message), CONFIG)


def test_a_store_is_found_by_its_pos_code_or_its_own_id(own_pos: Platform) -> None:
    for code, store in (("POS-001", "S001"), ("S002", "S002")):
        parsed = own_pos.parse_event(signed({**ACCEPTED, "store_code": code}), CONFIG)
        assert parsed is not None
        assert [event.store_id for event in parsed.events] == [store]


ORDER = examples.new_order("O-1", "POS-001", T * 1000)


def changed(message: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``message`` with the field at ``path`` ("a.b.0.c") set, or removed
    when ``value`` is ``...``."""
    copy = json.loads(json.dumps(message))
    *parents, last = path.split(".")
    target = copy
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    result: dict[str, Any] = copy
    return result


REFUND = examples.refund("refund.agreed", "O-1", "POS-001", T * 1000, order_completed=True,
                         partial=True, amount_fen=400)  # fmt: skip
CANCEL = examples.cancelled("O-1", "POS-001", T * 1000, order_accepted=False)


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (changed(ORDER, "order.user_paid_fen", 37.0), "order.user_paid_fen is 37.0, not a whole"),
        (changed(ORDER, "order.lines.1.unit_price_fen", 4.5),
         "order.lines[1].unit_price_fen is 4.5, not a whole number of fen"),
        (changed(ORDER, "order.delivery_fee_fen", "500"), "order.delivery_fee_fen is '500'"),
        (changed(ORDER, "order.discount_fen", -1), "order.discount_fen is -1"),
        (changed(ORDER, "order.merchant_income_fen", 36.8), "order.merchant_income_fen is 36.8"),
        (changed(ORDER, "order.lines.0.quantity", 0), "order.lines[0].quantity is 0"),
        (changed(ORDER, "order.lines.0.name", ...), "order.lines[0].name is missing"),
        (changed(ORDER, "order.lines", []), "order.lines is not a non-empty list"),
        (changed(ORDER, "order.original_amount_fen", ...), "order.original_amount_fen is missing"),
        (changed(ORDER, "order", ...), "order is missing"),
        (changed(REFUND, "refund.amount_fen", 4.0), "refund.amount_fen is 4.0"),
        (changed(REFUND, "refund.amount_fen", ...),
         "refund.amount_fen is missing; a partial refund states its amount"),
        (changed(REFUND, "refund", ...), "refund is missing"),
        (changed(REFUND, "refund.partial", "yes"), "refund.partial is 'yes', not true or false"),
        (changed(REFUND, "order_completed", ...), "order_completed is missing"),
        (changed(CANCEL, "order_accepted", 1), "order_accepted is 1, not true or false"),
        (changed(ORDER, "event", "order.shipped"), "event 'order.shipped' is not an own_pos"),
        (changed(ORDER, "message_id", ""), "message_id is '', not a non-empty string"),
        (changed(ORDER, "message_id", "m" * 201), "message_id is longer than 200"),
        (changed(ORDER, "order_id", ...), "order_id is missing"),
        (changed(ORDER, "store_code", 1.5), "store_code is 1.5"),
        (changed(ORDER, "event_time_ms", T), "event_time_ms is 1716181200, not a time in epoch"),
        (changed(ORDER, "event_time_ms", float(T * 1000)), "event_time_ms is 1716181200000.0"),
    ],
    ids=lambda value: None if isinstance(value, dict) else value.split(" ")[0],
)  # fmt: skip
def test_a_malformed_message_is_undecodable_naming_the_field(
    own_pos: Platform, message: dict[str, Any], problem: str
) -> None:
    with pytest.raises(UndecodablePush) as refused:
        own_pos.parse_event(signed(message), CONFIG)
    assert problem in str(refused.value)
    assert refused.value.status == 400


@pytest.mark.parametrize(
    ("body", "problem"),
    [(b"{not json", "not UTF-8 JSON"), (b"[1, 2]", "not a JSON object"),
     (b"\xff\xfe", "not UTF-8 JSON")],
)  # fmt: skip
def test_a_signed_body_that_is_not_a_json_object_is_undecodable(
    own_pos: Platform, body: bytes, problem: str
) -> None:
    headers = {"x-waimai-timestamp": str(T), "x-waimai-signature": signature(SECRET, T, body)}
    with pytest.raises(UndecodablePush, match=problem):
        own_pos.parse_event(request(body, headers), CONFIG)


def test_an_unsigned_body_is_unauthorised_before_it_is_read(own_pos: Platform) -> None:
    headers = {"x-waimai-timestamp": str(T), "x-waimai-signature": "00"}
    with pytest.raises(BadSignature):
        own_pos.parse_event(request(b"{not json", headers), CONFIG)


def test_a_push_to_a_kind_url_is_not_own_pos(own_pos: Platform) -> None:
    raw = {**fixture("order-accepted")["request"], "kind": "orders"}
    assert own_pos.parse_event(inbound(raw), CONFIG) is None


@pytest.mark.parametrize(
    ("event", "flag", "before", "after"),
    [
        ("order.cancelled", "order_accepted", 14, 17),
        ("refund.requested", "order_completed", 20, 30),
        ("refund.withdrawn", "order_completed", 21, 31),
        ("refund.rejected", "order_completed", 22, 32),
        ("refund.agreed", "order_completed", 23, 33),
    ],
)
def test_the_message_flag_chooses_the_family(
    own_pos: Platform, event: str, flag: str, before: int, after: int
) -> None:
    money: dict[str, Any] = {"refund": {"partial": False}} if event.startswith("refund.") else {}
    for value, expected in ((False, before), (True, after)):
        fields: dict[str, Any] = {flag: value, **money}
        message = examples.message(event, "O-1", "POS-001", T * 1000, **fields)
        parsed = own_pos.parse_event(signed(message), CONFIG)
        assert parsed is not None
        assert own_pos.map_state(parsed.events[0]).state == PlatformState(expected)


@given(
    st.sampled_from(sorted({"order.accepted", "kitchen.accept", "rider.delivered",
                            "order.completed"})),
    st.integers(min_value=10**11, max_value=4 * 10**12),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
            min_size=1, max_size=40),
)  # fmt: skip
def test_a_mapping_is_a_pure_function_of_the_event(event: str, time_ms: int, order: str) -> None:
    platform = PluginRegistry.discover(blocked=()).platform("own_pos")
    message = examples.message(event, order, "POS-001", time_ms)
    body, headers = signed_push(message, secret=SECRET, timestamp_s=T)
    parsed = platform.parse_event(request(body, headers), CONFIG)
    assert parsed is not None
    [native] = parsed.events
    assert native.platform_order_id == order
    assert native.platform_time_ms == time_ms
    first: StateChange = platform.map_state(native)
    assert platform.map_state(native) == first


# --------------------------------------------------------------------------- the README

README = Path(__file__).resolve().parent.parent / "plugins" / "own_pos" / "README.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README.read_text("utf-8"), flags=re.S)


def test_the_readme_signing_snippet_signs_what_the_plugin_verifies(own_pos: Platform) -> None:
    [snippet] = blocks("python")
    namespace: dict[str, Any] = {}
    exec(compile(snippet, str(README), "exec"), namespace)
    body, headers = namespace["sign"](ACCEPTED, SECRET, T)
    assert (body, headers) == signed_push(ACCEPTED, secret=SECRET, timestamp_s=T)
    parsed = own_pos.parse_event(request(body, headers), CONFIG)
    assert parsed is not None
    assert [event.native_code for event in parsed.events] == ["order.accepted"]


def test_the_readme_examples_are_pushes_the_plugin_takes(own_pos: Platform) -> None:
    messages = [json.loads(block) for block in blocks("json")]
    assert [message["event"] for message in messages] == [
        "order.created", "refund.requested", "kitchen.start_preparing",
    ]  # fmt: skip
    changes = []
    for message in messages:
        parsed = own_pos.parse_event(signed(message), CONFIG)
        assert parsed is not None
        [native] = parsed.events
        changes.append(own_pos.map_state(native))
        price = own_pos.price_breakdown(native, CONFIG)
        if message["event"] == "order.created":
            assert price is not None
            assert (price.user_paid, price.merchant_income, price.commission) == (3700, 3700, 0)
    assert [
        (change.state, change.kitchen_step, change.refund_amount_fen) for change in changes
    ] == [
        (PlatformState.CREATED, None, None),
        (PlatformState.REFUND_REQUESTED, None, 400),
        (None, KitchenStep.PREPARING, None),
    ]
