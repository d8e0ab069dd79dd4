"""The Meituan plugin's fetch_order against its fake API: the order read back as the events
of its pushes (same keys, same payload fields, same prices), and every way a read fails.

The fake learns each order from the pushes it is told of (``FakeMeituan.pushed``), as the
pull and fetch suites of the harness tell it; every hook is called through the core's
contract-checked :class:`Platform`, with the reference validator.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from waimai_bridge_meituan import assumptions
from waimai_bridge_meituan.examples import (
    ORDER_ID,
    T_PAID,
    Dish,
    cancel,
    logistics,
    money,
    order,
    priced_order,
    refund,
)
from waimai_bridge_meituan.signing import sig
from waimai_bridge_meituan.testing import (
    FIXTURE_APP_ID,
    FIXTURE_PUBLIC_BASE_URL,
    FIXTURE_SECRET,
    FakeAnswer,
    FakeMeituan,
    fixture_config,
    push_request,
    signed_push,
)

from waimai_bridge.errors import TransientPlatformError
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import (
    InboundRequest,
    NativeEvent,
    PlatformState,
    PluginConfig,
)
from waimai_bridge.pulled import (
    FetchedOrder,
    OrderRef,
)

DETAIL_PATH = assumptions.ORDER_DETAIL_PATH
STATUS_PATH = assumptions.ORDER_STATUS_PATH
SYSTEM = set(assumptions.SYSTEM_PARAMS)


@pytest.fixture
def fake() -> Iterator[FakeMeituan]:
    with FakeMeituan() as running:
        yield running


def config_for(fake: FakeMeituan, **settings: Any) -> PluginConfig:
    return fixture_config(api_base=fake.api_base, **settings)


def tell(
    meituan: Platform,
    fake: FakeMeituan,
    kind: str,
    params: dict[str, Any],
    *,
    delivered: bool = False,
    method: str = "POST",
    timestamp: int = T_PAID + 5,
) -> NativeEvent:
    """Tell the fake of a push it sent (or failed to send); the event the plugin reads
    from the same push."""
    body = signed_push(
        kind, params, secret=FIXTURE_SECRET, app_id=FIXTURE_APP_ID, timestamp=timestamp
    )
    request = push_request(kind, body, method=method)
    fake.pushed(request, delivered=delivered)
    inbound = InboundRequest(
        method=method,
        url=f"{FIXTURE_PUBLIC_BASE_URL}/webhooks/meituan/{kind}",
        kind=kind,
        query=[tuple(pair) for pair in request["query"]],
        headers=request["headers"],
        body=request["body"].encode("utf-8"),
        received_at_ms=1,
    )
    parsed = meituan.parse_event(inbound, fixture_config())
    assert parsed is not None
    [event] = parsed.events
    return event


def fetched(
    meituan: Platform, fake: FakeMeituan, store: str = "S001", order_id: str = ORDER_ID
) -> FetchedOrder:
    found = meituan.fetch_order(OrderRef(store_id=store, platform_order_id=order_id),
                                config_for(fake))  # fmt: skip
    assert found is not None
    return found


def by_code(found: FetchedOrder) -> dict[str, NativeEvent]:
    return {event.native_code: event for event in found.events}


# --------------------------------------------------------------------------- the full order


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_fetched_paid_order_is_its_push_event(
    meituan: Platform, fake: FakeMeituan, method: str
) -> None:
    pushed = tell(meituan, fake, "order_paid", order(), method=method)
    [event] = fetched(meituan, fake).events
    same = ("platform", "store_id", "platform_order_id", "native_code", "idempotency_key")
    assert {key: getattr(event, key) for key in same} == {key: getattr(pushed, key) for key in same}
    assert event.idempotency_key == f"order_paid:{ORDER_ID}"
    assert event.platform_time_ms == pushed.platform_time_ms == T_PAID * 1000
    assert not event.store_inferred
    # every field of the push reads the same from the fetched order: strings, JSON parsed
    told = {key: value for key, value in pushed.payload.items() if key not in SYSTEM}
    assert {key: event.payload.get(key) for key in told} == told


@pytest.mark.parametrize(
    ("store", "app_poi_code"),
    [("S001", "STORE-001"), ("S002", "STORE-002")],  # S002's line prices are list prices
)
def test_a_fetched_order_prices_like_the_pushed_one(
    meituan: Platform, fake: FakeMeituan, store: str, app_poi_code: str
) -> None:
    dishes = [
        Dish("宫保鸡丁", "SKU-1", "SKU-1-L", 2850, 2, 100),
        Dish("米饭", "SKU-2", "SKU-2", 300),
    ]
    sums = money(dishes, merchant_discount_fen=800, platform_discount_fen=235)
    params = priced_order("27061900338300777", app_poi_code, dishes, ctime=T_PAID, sums=sums)
    pushed = tell(meituan, fake, "order_paid", params)
    [event] = fetched(meituan, fake, store, "27061900338300777").events
    config = fixture_config()
    price = meituan.price_breakdown(event, config)
    assert price is not None
    assert price == meituan.price_breakdown(pushed, config)
    assert (price.user_paid, price.merchant_income) == (sums.user_paid, sums.merchant_income)


def test_the_reads_are_signed_gets_of_the_assumed_parameters(
    meituan: Platform, fake: FakeMeituan
) -> None:
    tell(meituan, fake, "order_paid", order())
    fetched(meituan, fake)
    assert [(call.method, call.path, call.params, call.sig_ok) for call in fake.calls] == [
        ("GET", STATUS_PATH, {"order_id": ORDER_ID}, True),
        ("GET", DETAIL_PATH, {"order_id": ORDER_ID, "is_mt_logistics": "0"}, True),
    ]


def test_an_order_read_as_a_list_of_one_is_read_the_same(
    meituan: Platform, fake: FakeMeituan
) -> None:
    tell(meituan, fake, "order_paid", order())
    plain = fetched(meituan, fake)
    detail = fake_detail(fake)
    fake.script(DETAIL_PATH, FakeAnswer(body=json_text({"data": [detail]})))
    assert fetched(meituan, fake) == plain


def test_json_fields_sent_parsed_are_taken_as_they_are(
    meituan: Platform, fake: FakeMeituan
) -> None:
    tell(meituan, fake, "order_paid", order())
    plain = fetched(meituan, fake)
    detail = fake_detail(fake)
    for name in ("detail", "extras", "poi_receive_detail"):
        detail[name] = json.loads(detail[name])
    fake.script(DETAIL_PATH, FakeAnswer(body=json_text({"data": detail})))
    assert fetched(meituan, fake) == plain


# --------------------------------------------------------------------------- the status


@pytest.mark.parametrize(
    ("kind", "status", "code", "state", "time_field"),
    [
        ("order_confirmed", 4, "order_confirmed", PlatformState.ACCEPTED, "order_confirm_time"),
        ("order_completed", 8, "order_completed", PlatformState.COMPLETED, "order_completed_time"),
    ],
)  # fmt: skip
def test_a_moved_order_reads_as_its_full_order_and_its_status_push(
    meituan: Platform,
    fake: FakeMeituan,
    kind: str,
    status: int,
    code: str,
    state: PlatformState,
    time_field: str,
) -> None:
    tell(meituan, fake, "order_paid", order())
    pushed = tell(meituan, fake, kind, order(status, utime=T_PAID + 600))
    events = by_code(fetched(meituan, fake))
    assert set(events) == {"order_paid", code}
    moved = events[code]
    assert moved.idempotency_key == pushed.idempotency_key == f"{code}:{ORDER_ID}"
    assert moved.platform_time_ms == (T_PAID + 600) * 1000
    said = {"order_id": ORDER_ID, "status": str(status), "app_poi_code": "STORE-001"}
    assert moved.payload == {**said, time_field: str(T_PAID + 600)}
    assert meituan.map_state(moved).state is state
    assert meituan.price_breakdown(moved, fixture_config()) is None
    # the full order is still dated when it was paid
    assert events["order_paid"].platform_time_ms == T_PAID * 1000


def test_a_cancelled_order_reads_as_a_cancel_after_acceptance(
    meituan: Platform, fake: FakeMeituan
) -> None:
    tell(meituan, fake, "order_paid", order())
    pushed = tell(meituan, fake, "order_cancelled", cancel("2009"), timestamp=T_PAID + 90)
    events = by_code(fetched(meituan, fake))
    assert events["order_cancelled"].idempotency_key == pushed.idempotency_key
    assert events["order_cancelled"].platform_time_ms == (T_PAID + 90) * 1000
    assert meituan.map_state(events["order_cancelled"]).state is PlatformState.FORCE_INVALIDATED


def test_a_rider_push_tells_the_fake_the_order_is_confirmed(
    meituan: Platform, fake: FakeMeituan
) -> None:
    tell(meituan, fake, "order_paid", order())
    tell(meituan, fake, "logistics", logistics(20, T_PAID + 900))
    assert set(by_code(fetched(meituan, fake))) == {"order_paid", "order_confirmed"}


def test_a_new_order_read_without_its_lines_leaves_the_push_key_to_the_push(
    meituan: Platform, fake: FakeMeituan
) -> None:
    tell(meituan, fake, "refund", refund("apply"))  # all the fake heard of the order
    [event] = fetched(meituan, fake).events
    assert event.native_code == "order_paid"
    assert event.idempotency_key == f"fetch:order_paid:{ORDER_ID}"
    assert meituan.map_state(event).state is PlatformState.CREATED
    assert meituan.price_breakdown(event, fixture_config()) is None


def test_an_order_asked_under_another_store_is_marked_inferred(
    meituan: Platform, fake: FakeMeituan
) -> None:
    tell(meituan, fake, "order_paid", order())
    [event] = fetched(meituan, fake, store="S002").events
    assert (event.store_id, event.store_inferred) == ("S002", True)


# --------------------------------------------------------------------------- nothing to give


def test_an_order_meituan_does_not_know_is_none(meituan: Platform, fake: FakeMeituan) -> None:
    ref = OrderRef(store_id="S001", platform_order_id="27061900330000000")
    assert meituan.fetch_order(ref, config_for(fake)) is None
    assert [call.path for call in fake.calls] == [STATUS_PATH]


def test_an_unpaid_order_is_none(meituan: Platform, fake: FakeMeituan) -> None:
    tell(meituan, fake, "order_paid", order())
    fake.script(STATUS_PATH, FakeAnswer(body='{"data":{"status":1}}'))
    ref = OrderRef(store_id="S001", platform_order_id=ORDER_ID)
    assert meituan.fetch_order(ref, config_for(fake)) is None


@pytest.mark.parametrize(
    ("path", "answer", "words"),
    [
        (STATUS_PATH, FakeAnswer.error(700, "系统错误"), "系统错误"),
        (STATUS_PATH, FakeAnswer.error(703, "签名验证错误"), "签名验证错误"),
        (DETAIL_PATH, FakeAnswer.error(711, "接口调用过于频繁"), "接口调用过于频繁"),
        (STATUS_PATH, FakeAnswer.http(502), "HTTP 502"),
        (STATUS_PATH, FakeAnswer(body="<html>maintenance</html>"), "not Meituan's JSON"),
        (STATUS_PATH, FakeAnswer(body='{"data":{"state":4}}'), "without a status"),
        (STATUS_PATH, FakeAnswer(body='{"data":null}'), "without data"),
        (DETAIL_PATH, FakeAnswer(body='{"data":"ok"}'), "without an order"),
        (DETAIL_PATH, FakeAnswer(body='{"data":{"order_id":1}}'), "another order"),
        (DETAIL_PATH, FakeAnswer.dropped(), "connection broke"),
    ],
)
def test_a_failed_read_is_transient(
    meituan: Platform, fake: FakeMeituan, path: str, answer: FakeAnswer, words: str
) -> None:
    tell(meituan, fake, "order_paid", order())
    fake.script(path, answer)
    ref = OrderRef(store_id="S001", platform_order_id=ORDER_ID)
    with pytest.raises(TransientPlatformError) as failed:
        meituan.fetch_order(ref, config_for(fake))
    assert words in failed.value.message
    assert FIXTURE_SECRET not in str(failed.value)


def test_a_read_with_no_answer_in_time_is_transient(meituan: Platform, fake: FakeMeituan) -> None:
    tell(meituan, fake, "order_paid", order())
    fake.script(STATUS_PATH, FakeAnswer.slow(2.0))
    ref = OrderRef(store_id="S001", platform_order_id=ORDER_ID)
    with pytest.raises(TransientPlatformError, match=r"no answer within 0\.3 s"):
        meituan.fetch_order(ref, config_for(fake, api_timeout_seconds=0.3))


@pytest.mark.parametrize(
    ("modules", "incomplete"),
    [([0], True), ("[1,8]", True), ([], True), ([8, 6], False)],
)
def test_a_read_meituan_marks_incomplete_is_read_again(
    meituan: Platform, fake: FakeMeituan, modules: object, incomplete: bool
) -> None:
    tell(meituan, fake, "order_paid", order())
    detail = {**fake_detail(fake), "incmp_code": -1, "incmp_modules": modules}
    fake.script(DETAIL_PATH, FakeAnswer(body=json_text({"data": detail})))
    ref = OrderRef(store_id="S001", platform_order_id=ORDER_ID)
    if incomplete:
        with pytest.raises(TransientPlatformError, match="incomplete"):
            meituan.fetch_order(ref, config_for(fake))
    else:
        assert meituan.fetch_order(ref, config_for(fake)) is not None


def test_an_order_whose_prices_cannot_be_read_is_transient(
    meituan: Platform, fake: FakeMeituan
) -> None:
    tell(meituan, fake, "order_paid", order())
    detail = {**fake_detail(fake), "total": "a lot"}
    fake.script(DETAIL_PATH, FakeAnswer(body=json_text({"data": detail})))
    ref = OrderRef(store_id="S001", platform_order_id=ORDER_ID)
    with pytest.raises(TransientPlatformError, match="cannot be read"):
        meituan.fetch_order(ref, config_for(fake))


# --------------------------------------------------------------------------- helpers


def fake_detail(fake: FakeMeituan) -> dict[str, Any]:
    """The order as the fake's getOrderDetail answers it now, read with a signed GET."""
    url = fake.api_base + DETAIL_PATH
    params = {"order_id": ORDER_ID, "app_id": FIXTURE_APP_ID, "timestamp": str(T_PAID)}
    answer = httpx.get(url, params={**params, "sig": sig(url, params, FIXTURE_SECRET)})
    data: dict[str, Any] = answer.json()["data"]
    return data


def json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)
