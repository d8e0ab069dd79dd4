"""Signed pushes holding values the database cannot hold, read by each plugin through the
core's contract-checked hook calls: refused at the webhook with a 400 naming the field,
never another exception; what a plugin accepts, its worker hooks can map and price.

The same pushes over real HTTP, on SQLite and PostgreSQL: ``test_hostile_pushes_e2e.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from waimai_bridge_eleme import examples as eleme
from waimai_bridge_eleme.testing import push_body as eleme_body
from waimai_bridge_meituan import examples as meituan
from waimai_bridge_meituan.testing import FIXTURE_APP_ID, FIXTURE_SECRET, fixture_config
from waimai_bridge_meituan.testing import signed_push as meituan_body
from waimai_bridge_own_pos import examples as own_pos
from waimai_bridge_own_pos.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from waimai_bridge_own_pos.testing import FIXTURE_SETTINGS, FIXTURE_STORES
from waimai_bridge_own_pos.testing import signed_push as own_pos_body

from tests.schema_strategies import paths, replaced
from waimai_bridge.errors import PushRefused
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import InboundRequest, NativeEvent, PluginConfig
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.untrusted import MAX_JSON_LENGTH

LONG = 300
"""Longer than every column a push's text goes to."""
ELEME_SHOP = 160012345
ELEME_SECRET = "hostile-eleme-secret"
ELEME_APP_ID = 58137347
T_MS = 1_716_181_200_000


@dataclass(frozen=True)
class Push:
    """A push as a plugin receives it: the URL kind, the body and the headers."""

    platform: str
    kind: str | None
    body: bytes
    headers: dict[str, str]

    def request(self, *, received_at_ms: int | None = None) -> InboundRequest:
        form = {"content-type": "application/x-www-form-urlencoded"} if self.kind else {}
        return InboundRequest(
            method="POST",
            url=f"https://bridge.example.com/webhooks/{self.platform}",
            kind=self.kind,
            query=[],
            headers={**form, **{key.lower(): value for key, value in self.headers.items()}},
            body=self.body,
            received_at_ms=received_at_ms or int(time.time() * 1000),
        )


def eleme_push(push_type: int, message: dict[str, Any] | str) -> Push:
    body = eleme_body(push_type, message, app_id=ELEME_APP_ID, shop_id=ELEME_SHOP,
                      secret=ELEME_SECRET, timestamp_ms=T_MS)  # fmt: skip
    return Push("eleme", None, body, {})


def meituan_push(kind: str, params: dict[str, Any]) -> Push:
    body = meituan_body(kind, params, secret=FIXTURE_SECRET, app_id=FIXTURE_APP_ID,
                        timestamp=meituan.T_PAID + 5)  # fmt: skip
    return Push("meituan", kind, body, {})


def own_pos_push(message: dict[str, Any] | bytes) -> Push:
    secret = str(FIXTURE_SETTINGS["secret"])
    if isinstance(message, bytes):  # a raw body, signed as it is
        now = int(time.time())
        headers = {TIMESTAMP_HEADER: str(now), SIGNATURE_HEADER: signature(secret, now, message)}
        return Push("own_pos", None, message, headers)
    body, headers = own_pos_body(message, secret=secret)
    return Push("own_pos", None, body, headers)


CONFIGS = {
    "eleme": PluginConfig(
        platform="eleme", public_base_url="https://bridge.example.com",
        settings={"app_key": "k", "app_secret": ELEME_SECRET, "app_id": ELEME_APP_ID},
        stores={"S001": {"shop_id": ELEME_SHOP, "token": "t"}},
    ),
    "meituan": fixture_config(),
    "own_pos": PluginConfig(
        platform="own_pos", public_base_url="https://bridge.example.com",
        settings=dict(FIXTURE_SETTINGS),
        stores={store: dict(binding) for store, binding in FIXTURE_STORES.items()},
    ),
}  # fmt: skip


def deep(depth: int) -> Any:
    return json.loads("[" * depth + "]" * depth)


ELEME_ORDER = eleme.new_order("E-1", ELEME_SHOP)
MEITUAN_DISH = meituan.DETAIL[0]
OWN_ORDER = own_pos.new_order("P-1", "POS-001", T_MS)
OWN_LINE = own_pos.DEFAULT_LINES[0]

NORMAL: dict[str, Callable[[], Push]] = {
    "eleme": lambda: eleme_push(10, ELEME_ORDER),
    "meituan": lambda: meituan_push("order_paid", meituan.order()),
    "own_pos": lambda: own_pos_push(OWN_ORDER),
}
"""A normal new order of each platform."""

HOSTILE: dict[str, tuple[Callable[[], Push], str | None]] = {
    # Eleme
    "eleme-sku-code": (lambda: eleme_push(10, eleme.new_order("E-2", ELEME_SHOP, lines=[
        eleme.Line("宫保鸡丁", "S" * LONG, 1, 2800)])), "sku_code"),
    "eleme-order-id": (lambda: eleme_push(10, eleme.new_order("9" * LONG, ELEME_SHOP)), "orderId"),
    "eleme-1e26-yuan": (lambda: eleme_push(10, {**ELEME_ORDER, "totalPrice": 1e26}),
                        "totalPrice"),
    "eleme-quantity": (lambda: eleme_push(10, eleme.new_order("E-3", ELEME_SHOP, lines=[
        eleme.Line("宫保鸡丁", "SKU-1", 1, 2800, quantity=10**12)])), "quantity"),
    "eleme-refund-1e26-yuan": (lambda: eleme_push(30, {**eleme.refund(
        "E-1", ELEME_SHOP, "applied", T_MS // 1000), "totalPrice": "1e26"}), "totalPrice"),
    "eleme-time": (lambda: eleme_push(12, eleme.status("E-1", ELEME_SHOP, "valid", 10**30)),
                   "updateTime"),
    "eleme-deep-json": (lambda: eleme_push(12, {"orderId": "E-1", "x": deep(40)}),
                        "nests deeper"),
    "eleme-request-id": (lambda: Push("eleme", None, eleme_body(
        12, eleme.status("E-1", ELEME_SHOP, "valid", 1), app_id=ELEME_APP_ID, shop_id=ELEME_SHOP,
        secret=ELEME_SECRET, request_id="r" * LONG), {}), "requestId"),
    # Meituan
    "meituan-sku-code": (lambda: meituan_push("order_paid", meituan.order(
        detail=[{**MEITUAN_DISH, "sku_id": "S" * LONG}])), "sku_code"),
    "meituan-order-id": (lambda: meituan_push("order_paid", meituan.order(order_id="9" * LONG)),
                         "order_id"),
    "meituan-1e26-yuan": (lambda: meituan_push("order_paid", meituan.order(total="1e26")),
                          "1e26"),
    "meituan-quantity": (lambda: meituan_push("order_paid", meituan.order(
        detail=[{**MEITUAN_DISH, "quantity": 10**12}])), "quantity"),
    "meituan-box-fee": (lambda: meituan_push("order_paid", meituan.order(
        detail=[{**MEITUAN_DISH, "box_num": "1e999999", "box_price": "1e999999"}])), "box_num"),
    "meituan-refund-1e26-yuan": (lambda: meituan_push("partial_refund", meituan.partial(
        "agree", money="1e26")), "money"),
    "meituan-refund-count": (lambda: meituan_push("partial_refund", meituan.partial(
        "agree", food=[{**meituan.PARTIAL_FOOD[0], "count": 10**12}])), "quantity"),
    "meituan-commission": (lambda: meituan_push("order_paid", meituan.order(
        poi_receive_detail={**meituan.RECEIVE, "foodShareFeeChargeByPoi": 10**30})),
        "too large"),
    "meituan-time": (lambda: meituan_push("order_paid", {**meituan.order(),
                                                         "utime": "9" * 30}), "utime"),
    "meituan-unicode-digits": (lambda: meituan_push("order_paid", {**meituan.order(),
                                                                   "utime": "²"}), None),
    "meituan-deep-json": (lambda: meituan_push("order_paid", meituan.order(detail=deep(40))),
                          "nests deeper"),
    # own_pos
    "own_pos-sku-code": (lambda: own_pos_push(own_pos.new_order("P-2", "POS-001", T_MS, lines=[
        own_pos.Line("S" * LONG, "宫保鸡丁", 2800)])), "sku_code"),
    "own_pos-order-id": (lambda: own_pos_push(own_pos.new_order(
        "9" * LONG, "POS-001", T_MS, message_id="M-1")), "order_id"),
    "own_pos-huge-fen": (lambda: own_pos_push(own_pos.new_order("P-3", "POS-001", T_MS, lines=[
        own_pos.Line("SKU-1", "宫保鸡丁", 10**26)])), "user_paid_fen"),
    "own_pos-quantity": (lambda: own_pos_push(own_pos.new_order("P-4", "POS-001", T_MS, lines=[
        own_pos.Line("SKU-1", "宫保鸡丁", 2800, quantity=10**12)])), "quantity"),
    "own_pos-time": (lambda: own_pos_push(own_pos.new_order("P-5", "POS-001", 10**30)),
                     "event_time_ms"),
    "own_pos-deep-json": (lambda: own_pos_push(b"[" * 100_000), "nests deeper"),
    "own_pos-surrogate": (lambda: own_pos_push(b'{"order_id": "\\ud800"}'), "surrogate"),
}  # fmt: skip
"""A push holding a value the bridge cannot store, and the words its refusal must hold
(None: a push that is read as if the field were absent)."""


@pytest.fixture(scope="module")
def platforms() -> dict[str, Platform]:
    registry = PluginRegistry.discover(blocked=())
    return {name: registry.platform(name) for name in CONFIGS}


def read(platforms: dict[str, Platform], push: Push) -> list[NativeEvent]:
    """The push's events as the webhook reads them, then mapped and priced as the worker
    does; a refusal propagates."""
    platform = platforms[push.platform]
    config = CONFIGS[push.platform]
    parsed = platform.parse_event(push.request(), config)
    assert parsed is not None
    for event in parsed.events:
        platform.map_state(event)
        platform.price_breakdown(event, config)
    return parsed.events


@pytest.mark.parametrize("platform", sorted(NORMAL))
def test_a_normal_order_is_read(platforms: dict[str, Platform], platform: str) -> None:
    [event] = read(platforms, NORMAL[platform]())
    assert event.platform == platform


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_value_the_database_cannot_hold_is_refused_naming_it(
    platforms: dict[str, Platform], case: str
) -> None:
    build, words = HOSTILE[case]
    if words is None:
        assert read(platforms, build())
        return
    with pytest.raises(PushRefused) as refused:
        read(platforms, build())
    assert refused.value.status == 400
    assert words in refused.value.message
    assert len(refused.value.message) < 400


OVERSIZED = b'{"padding": "' + b"x" * MAX_JSON_LENGTH + b'"}'
"""A JSON document past the bound (only a direct hook call can pass it: the webhook's
body limit is the same)."""


@pytest.mark.parametrize(
    "build",
    [
        lambda: own_pos_push(OVERSIZED),
        lambda: eleme_push(12, OVERSIZED.decode()),
        lambda: Push("eleme", None, OVERSIZED, {}),
    ],
    ids=["own_pos-body", "eleme-message", "eleme-body"],
)
def test_a_json_document_longer_than_the_bound_is_refused_unread(
    platforms: dict[str, Platform], build: Callable[[], Push]
) -> None:
    with pytest.raises(PushRefused) as refused:
        read(platforms, build())
    assert refused.value.status == 400
    assert f"longer than {MAX_JSON_LENGTH}" in refused.value.message


# --------------------------------------------------------------------------- fuzz

hostile_values = st.one_of(
    st.text(min_size=LONG, max_size=LONG + 1),
    st.integers(min_value=2**31, max_value=10**30),
    st.integers(max_value=-1),
    st.sampled_from(["1e26", "-1e26", "1e999999", "NaN", "", "²", "9" * 40, 1e300, 0.001, True]),
    st.just(deep(20)),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.lists(st.none(), max_size=2),
)
"""Values that cannot be stored, or are not what the field holds."""

FUZZ_SETTINGS = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

MESSAGES: dict[str, tuple[Any, Callable[[Any], Push]]] = {
    "eleme-order": (ELEME_ORDER, lambda message: eleme_push(10, message)),
    "eleme-refund": (
        eleme.refund("E-1", ELEME_SHOP, "applied", T_MS // 1000, partial_lines=[("可乐", 1, 500)]),
        lambda message: eleme_push(30, message),
    ),
    "meituan-order": (meituan.order(), lambda params: meituan_push("order_paid", params)),
    "meituan-refund": (meituan.partial("agree"), lambda p: meituan_push("partial_refund", p)),
    "own_pos-order": (OWN_ORDER, own_pos_push),
    "own_pos-refund": (
        own_pos.refund("refund.agreed", "P-1", "POS-001", T_MS, order_completed=True,
                       partial=True, amount_fen=500, lines=[("SKU-1", "可乐", 1, 500)]),
        own_pos_push,
    ),
}  # fmt: skip
"""A valid message of each kind that carries money, and how it is sent."""


@pytest.mark.parametrize("kind", sorted(MESSAGES))
@FUZZ_SETTINGS
@given(data=st.data())
def test_a_damaged_push_is_refused_or_read_never_a_failure(
    platforms: dict[str, Platform], kind: str, data: st.DataObject
) -> None:
    message, send = MESSAGES[kind]
    where = data.draw(st.sampled_from([path for path in paths(message) if path]))
    damaged = replaced(message, where, data.draw(hostile_values))
    try:
        events = read(platforms, send(damaged))
    except PushRefused as refused:
        status, problem = refused.status, refused.message
    else:
        assert all(len(event.platform_order_id) <= 64 for event in events)
        return
    assert status in (400, 401)
    assert problem


# --------------------------------------------------------------------------- the worker's hooks


def native(platform: str, code: str, payload: dict[str, Any]) -> NativeEvent:
    """An event as the inbox holds it, written before its plugin refused such values."""
    return NativeEvent(platform=platform, store_id="S001", platform_order_id="O-1",
                       native_code=code, idempotency_key=f"{code}:O-1", platform_time_ms=T_MS,
                       payload=payload)  # fmt: skip


WORKER_ONLY: dict[str, tuple[NativeEvent, str, str]] = {
    "eleme-refund": (native("eleme", "30", {**eleme.refund(
        "O-1", ELEME_SHOP, "applied", T_MS // 1000), "totalPrice": "1e26"}), "map_state",
        "totalPrice"),
    "eleme-refund-line": (native("eleme", "30", eleme.refund(
        "O-1", ELEME_SHOP, "applied", T_MS // 1000, partial_lines=[("可乐", 1, 500)])
        | {"goodsList": [{"name": "可乐", "quantity": 1, "price": [1]}]}), "map_state",
        "goodsList price"),
    "eleme-order": (native("eleme", "10", {**ELEME_ORDER, "income": "1e999999"}),
                    "price_breakdown", "income"),
    "meituan-refund": (native("meituan", "partial_refund.agree", meituan.partial(
        "agree", money="1e26")), "map_state", "money"),
    "meituan-order": (native("meituan", "order_paid", meituan.order(total="1e26")),
                      "price_breakdown", "1e26"),
    "meituan-box-fee": (native("meituan", "order_paid", meituan.order(
        detail=[{**MEITUAN_DISH, "box_num": "lots"}])), "price_breakdown", "box_num"),
    "own_pos-refund": (native("own_pos", "refund.agreed", own_pos.refund(
        "refund.agreed", "O-1", "POS-001", T_MS, order_completed=True, partial=True,
        amount_fen=10**26)), "map_state", "refund.amount_fen"),
    "own_pos-order": (native("own_pos", "order.created", own_pos.new_order(
        "O-1", "POS-001", T_MS, lines=[own_pos.Line("SKU-1", "宫保鸡丁", 10**26)])),
        "price_breakdown", "user_paid_fen"),
}  # fmt: skip
"""An inbox event whose value only the worker's hooks read, the hook, the words."""


@pytest.mark.parametrize("case", sorted(WORKER_ONLY))
def test_a_worker_hook_refuses_a_value_it_cannot_hold_with_a_value_error_naming_it(
    platforms: dict[str, Platform], case: str
) -> None:
    event, hook, words = WORKER_ONLY[case]
    platform = platforms[event.platform]
    call: Callable[[], object] = (
        partial(platform.map_state, event)
        if hook == "map_state"
        else partial(platform.price_breakdown, event, CONFIGS[event.platform])
    )
    with pytest.raises(ValueError, match=words) as refused:
        call()
    assert len(str(refused.value)) < 200
