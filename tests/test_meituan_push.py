"""The Meituan plugin's pure parts: the sig, reading pushes, the state table, the prices.

Every hook is called through the core's contract-checked :class:`Platform`, with the
reference validator, so a result that breaks a contract fails here too.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from waimai_bridge_meituan import assumptions, details, push, states
from waimai_bridge_meituan.examples import (
    DETAIL,
    ORDER_ID,
    RECEIVE,
    T_PAID,
    cancel,
    logistics,
    order,
    partial,
    refund,
)
from waimai_bridge_meituan.signing import sig, sig_matches
from waimai_bridge_meituan.testing import (
    FIXTURE_APP_ID,
    FIXTURE_SECRET,
    fixture_config,
    signed_params,
    signed_push,
)

from waimai_bridge.errors import BadSignature, UndecodablePush, UnknownStore
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import (
    InboundRequest,
    NativeEvent,
    OrderDetails,
    PlatformState,
    PluginConfig,
    PriceBreakdown,
    RefundedItem,
    StateChange,
)

ACK = (200, '{"data":"ok"}')


def body(
    kind: str, params: dict[str, Any], *, timestamp: int = T_PAID + 5, **options: Any
) -> bytes:
    """A push body signed for the fixtures' config."""
    options.setdefault("secret", FIXTURE_SECRET)
    options.setdefault("app_id", FIXTURE_APP_ID)
    return signed_push(kind, params, timestamp=timestamp, **options)


def request(kind: str | None, content: bytes = b"", *, method: str = "POST") -> InboundRequest:
    """An inbound request to the kind's URL: a form POST, or the same string as a GET query."""
    query: list[tuple[str, str]] = []
    if method == "GET":
        from urllib.parse import parse_qsl

        query = parse_qsl(content.decode(), keep_blank_values=True)
        content = b""
    return InboundRequest(
        method=method,
        url=f"https://bridge.example.com/webhooks/meituan/{kind}",
        kind=kind,
        query=query,
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=content,
        received_at_ms=1,
    )


CONFIG = fixture_config()


def only_event(meituan: Platform, kind: str, content: bytes, method: str = "POST") -> NativeEvent:
    parsed = meituan.parse_event(request(kind, content, method=method), CONFIG)
    assert parsed is not None
    assert (parsed.reply.status, parsed.reply.body) == ACK
    [event] = parsed.events
    return event


# --------------------------------------------------------------------------- signing


def test_the_official_sig_example() -> None:
    # platforms.md §4.2: Meituan's documentation example
    assert (
        sig(
            "http://waimaiopen.meituan.com/api/v1/poi/mget",
            {"app_id": "1235123121", "app_poi_codes": "31", "timestamp": "1389751221"},
            "d31ba58fd73c71db697ab5e4946d52d",
        )
        == "00934d00d0aea6f12161edfb6456143d"
    )


def test_the_sdk_sig_example_with_a_chinese_value() -> None:
    # platforms.md §4.2: a third-party SDK's unit test; Chinese values are signed raw
    assert (
        sig(
            "https://waimaiopen.meituan.com/api/v1/order/getOrderDaySeq",
            {"app_id": "0000", "timestamp": "1389751221", "app_poi_code": "31号测试店"},
            "864be81325af06a24a806277bb084701",
        )
        == "95f7dc02f936cdd293d3aa8ec881eaa4"
    )


def test_sig_leaves_out_sig_and_img_data_and_signs_empty_values() -> None:
    base = {"app_id": "1", "timestamp": "2", "note": ""}
    url = "https://x.example/api"
    plain = sig(url, base, "s")
    assert sig(url, {**base, "sig": "whatever", "img_data": "bin"}, "s") == plain
    assert sig(url, base, "s", skip_empty=True) == sig(url, {"app_id": "1", "timestamp": "2"}, "s")
    assert plain != sig(url, base, "s", skip_empty=True)
    assert sig_matches(plain, plain.upper())
    assert not sig_matches(plain, plain[:-1] + ("0" if plain[-1] != "0" else "1"))


@settings(max_examples=200, deadline=None)
@given(
    params=st.dictionaries(
        st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(
            lambda key: key not in ("sig", "img_data")
        ),
        st.text(max_size=20),
        max_size=8,
    ),
    data=st.data(),
)
def test_sig_does_not_depend_on_the_order_of_params_and_sees_every_value(
    params: dict[str, str], data: st.DataObject
) -> None:
    url = "https://bridge.example.com/webhooks/meituan/refund"
    shuffled = dict(data.draw(st.permutations(list(params.items()))))
    assert sig(url, shuffled, "secret") == sig(url, params, "secret")
    if params:
        key = data.draw(st.sampled_from(sorted(params)))
        assert sig(url, {**params, key: params[key] + "x"}, "secret") != sig(url, params, "secret")


RESEARCH_SECRET = "demo-meituan-secret-0123456789abcd"
RESEARCH_SAMPLES: list[tuple[str, dict[str, str]]] = [
    (
        "https://merchant.example.com/meituan/push/refund_part",
        {
            "app_id": "6123", "timestamp": "1716181240", "order_id": "27061900338318741",
            "notify_type": "part", "refund_id": "68012345678", "ctime": "1716181234",
            "reason": "少送了一罐可乐", "res_type": "0", "is_appeal": "0", "pictures": "",
            "food": '[{"app_food_code":"SKU-2002","box_num":0,"box_price":0,"count":1,'
            '"food_name":"可乐","food_price":5.0,"origin_food_price":5.0,"refund_price":5.0,'
            '"sku_id":"SKU-2002-330","spec":"330ml"}]',
            "money": "5.0", "sig": "8b499b9bf68354987164367ca506f5ac",
        },
    ),
    (
        "https://merchant.example.com/meituan/push/logistics",
        {
            "app_id": "6123", "timestamp": "1716178801", "order_id": "27061900338318741",
            "wm_order_id_view": "27061900338318741", "logistics_status": "20",
            "time": "1716178800", "dispatcher_name": "李四",
            "dispatcher_mobile": "13900001111_4321", "sig": "203f6d5f578a97d700c7784a2c9eacb7",
        },
    ),
    (
        "https://merchant.example.com/meituan/push/order_paid",
        {
            "app_id": "6123", "timestamp": "1716177495", "order_id": "1",
            "app_poi_code": "STORE-001", "sig": "0",
        },
    ),
]  # fmt: skip


@pytest.mark.parametrize(("url", "form"), RESEARCH_SAMPLES[:2], ids=["refund_part", "logistics"])
def test_the_research_samples_verify(url: str, form: dict[str, str]) -> None:
    # research/samples: sigs computed independently by the research's signing.py
    reading = push.verified_reading(url, form, RESEARCH_SECRET, form["sig"])
    assert reading == {key: value for key, value in form.items() if key != "sig"}  # what it signs
    assert push.verified_reading(url + "x", form, RESEARCH_SECRET, form["sig"]) is None
    assert push.verified_reading(url, form, RESEARCH_SECRET + "x", form["sig"]) is None


def test_the_research_order_sample_verifies_after_the_second_decoding() -> None:
    # the research's order sample: detail/extras/… still %-encoded after one form decoding
    url = "https://merchant.example.com/meituan/push/order_paid"
    form = {
        "app_id": "6123", "timestamp": "1716177495", "order_id": "27061900338318741",
        "wm_order_id_view": "27061900338318741", "app_poi_code": "STORE-001",
        "wm_poi_name": (
            "%E7%A4%BA%E4%BE%8B%E5%B0%8F%E9%A6%86%28%E9%87%91%E6%B2%99%E6%B1%9F%E8%B7%AF%E5%BA"
            "%97%29"
        ),
        "wm_poi_address": (
            "%E4%B8%8A%E6%B5%B7%E5%B8%82%E6%99%AE%E9%99%80%E5%8C%BA%E9%87%91%E6%B2%99%E6%B1%9F"
            "%E8%B7%AF1500%E5%8F%B7"
        ),
        "wm_poi_phone": "021-62000000",
        "recipient_address": (
            "%E8%BF%91%E9%93%81%E5%9F%8E%E5%B8%82%E5%B9%BF%E5%9C%BA%E5%8C%97%E5%BA%A7+%285%E6"
            "%A5%BC%E5%89%8D%E5%8F%B0%29%40%23%E4%B8%8A%E6%B5%B7%E5%B8%82%E6%99%AE%E9%99%80%E5"
            "%8C%BA%E9%87%91%E6%B2%99%E6%B1%9F%E8%B7%AF1518%E5%BC%84"
        ),
        "recipient_phone": "18400001234_5678",
        "backup_recipient_phone": "%5B%2218400001234_6789%22%5D",
        "recipient_name": "%E7%8E%8B%28%E5%85%88%E7%94%9F%29",
        "shipping_fee": "5.0", "total": "34.0", "original_price": "44.0",
        "caution": (
            "%E5%B0%91%E6%94%BE%E8%BE%A3+%E6%94%B6%E9%A4%90%E4%BA%BA%E9%9A%90%E7%A7%81%E5%8F%B7"
            "+18400001234_5678%EF%BC%8C%E6%89%8B%E6%9C%BA%E5%8F%B7+184****1234"
        ),
        "shipper_phone": "", "status": "2", "city_id": "310100", "has_invoiced": "0",
        "invoice_title": "", "taxpayer_id": "", "ctime": "1716177483", "utime": "1716177490",
        "delivery_time": "0", "is_third_shipping": "0", "pay_type": "2", "pick_type": "0",
        "latitude": "31.232370", "longitude": "121.392810", "day_seq": "12",
        "is_favorites": "false", "is_poi_first_order": "true", "dinners_number": "1",
        "logistics_code": "1001",
        "poi_receive_detail": (
            "%7B%22actOrderChargeByMt%22%3A%5B%7B%22comment%22%3A%22%E6%BB%A130%E5%85%83%E5%87"
            "%8F10%E5%85%83%22%2C%22feeTypeDesc%22%3A%22%E6%B4%BB%E5%8A%A8%E6%AC%BE%22%2C%22fee"
            "TypeId%22%3A10019%2C%22moneyCent%22%3A200%7D%5D%2C%22actOrderChargeByPoi%22%3A%5B"
            "%7B%22comment%22%3A%22%E6%BB%A130%E5%85%83%E5%87%8F10%E5%85%83%22%2C%22feeTypeDesc"
            "%22%3A%22%E6%B4%BB%E5%8A%A8%E6%AC%BE%22%2C%22feeTypeId%22%3A10019%2C%22moneyCent"
            "%22%3A800%7D%5D%2C%22foodShareFeeChargeByPoi%22%3A465%2C%22logisticsFee%22%3A500"
            "%2C%22onlinePayment%22%3A3400%2C%22wmPoiReceiveCent%22%3A2635%2C%22reconciliationE"
            "xtras%22%3A%22%7B%5C%22chargeMode%5C%22%3A1%7D%22%7D"
        ),
        "detail": (
            "%5B%7B%22app_food_code%22%3A%22SKU-1001%22%2C%22box_num%22%3A1%2C%22box_price%22"
            "%3A1.0%2C%22cart_id%22%3A0%2C%22food_discount%22%3A1%2C%22food_name%22%3A%22%E5%AE"
            "%AB%E4%BF%9D%E9%B8%A1%E4%B8%81%22%2C%22food_property%22%3A%22%E5%BE%AE%E8%BE%A3%22"
            "%2C%22price%22%3A28.0%2C%22quantity%22%3A1%2C%22sku_id%22%3A%22SKU-1001-L%22%2C%22"
            "spec%22%3A%22%E5%A4%A7%E4%BB%BD%22%2C%22unit%22%3A%22%E4%BB%BD%22%7D%2C%7B%22app_f"
            "ood_code%22%3A%22SKU-2002%22%2C%22box_num%22%3A0%2C%22box_price%22%3A0%2C%22cart_i"
            "d%22%3A0%2C%22food_discount%22%3A1%2C%22food_name%22%3A%22%E5%8F%AF%E4%B9%90%22%2C"
            "%22food_property%22%3A%22%22%2C%22price%22%3A5.0%2C%22quantity%22%3A2%2C%22sku_id"
            "%22%3A%22SKU-2002-330%22%2C%22spec%22%3A%22330ml%22%2C%22unit%22%3A%22%E7%BD%90%22"
            "%7D%5D"
        ),
        "extras": (
            "%5B%7B%22act_detail_id%22%3A1234567890%2C%22mt_charge%22%3A2.0%2C%22poi_charge%22"
            "%3A8.0%2C%22reduce_fee%22%3A10.0%2C%22remark%22%3A%22%E6%BB%A130%E5%85%83%E5%87%8F"
            "10%E5%85%83%22%2C%22type%22%3A2%7D%5D"
        ),
        "avg_send_time": "1800.0", "package_bag_money": "0", "order_tag_list": "%5B%5D",
        "incmp_code": "0", "incmp_modules": "%5B%5D", "sig": "8847356a3104dc850ba07a13a016e0b1",
    }  # fmt: skip
    reading = push.verified_reading(url, form, RESEARCH_SECRET, form["sig"])
    assert reading is not None
    assert reading["wm_poi_name"] == "示例小馆(金沙江路店)"
    assert reading["caution"].startswith("少放辣 收餐人")
    assert json.loads(reading["detail"])[0]["sku_id"] == "SKU-1001-L"
    assert json.loads(reading["poi_receive_detail"])["wmPoiReceiveCent"] == 2635
    # the values as the form decoding left them are not what Meituan signed
    assert sig(url, form, RESEARCH_SECRET) != form["sig"]


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_paid_order_push_becomes_one_event(meituan: Platform, method: str) -> None:
    event = only_event(meituan, "order_paid", body("order_paid", order()), method)
    assert event.store_id == "S001"
    assert event.platform_order_id == ORDER_ID
    assert event.native_code == "order_paid"
    assert event.idempotency_key == f"order_paid:{ORDER_ID}"
    assert event.platform_time_ms == T_PAID * 1000  # utime, not ctime nor timestamp
    assert event.payload["detail"] == DETAIL
    assert event.payload["poi_receive_detail"] == RECEIVE
    assert event.payload["caution"] == order()["caution"]
    assert event.payload["recipient_address"] == order()["recipient_address"]
    assert "sig" not in event.payload


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_an_empty_probe_is_acknowledged_with_no_event(meituan: Platform, method: str) -> None:
    for kind in assumptions.KIND_CODES:
        parsed = meituan.parse_event(request(kind, b"", method=method), CONFIG)
        assert parsed is not None
        assert ((parsed.reply.status, parsed.reply.body), parsed.events) == (ACK, [])


def test_a_kind_meituan_does_not_push_is_not_a_meituan_push(meituan: Platform) -> None:
    assert meituan.parse_event(request("order_lost", body("order_lost", order())), CONFIG) is None
    assert meituan.parse_event(request(None, body("order_paid", order())), CONFIG) is None


def refused(meituan: Platform, kind: str, content: bytes, method: str = "POST") -> Any:
    with pytest.raises((BadSignature, UndecodablePush, UnknownStore)) as caught:
        meituan.parse_event(request(kind, content, method=method), CONFIG)
    exc = caught.value
    assert exc.reply is not None
    answer = json.loads(exc.reply.body)
    assert answer["data"] == "ng"
    return type(exc), exc.status, answer["error"]["code"], exc


def tampered(content: bytes, key: str, value: str) -> bytes:
    from urllib.parse import parse_qsl

    pairs = [(k, value if k == key else v) for k, v in parse_qsl(content.decode())]
    return urlencode(pairs).encode()


def test_a_tampered_push_is_refused_with_401(meituan: Platform) -> None:
    good = body("order_paid", order())
    kind, status, code, _ = refused(meituan, "order_paid", tampered(good, "total", "3.4"))
    assert (kind, status, code) == (BadSignature, 401, 703)
    kind, status, code, _ = refused(meituan, "order_paid", tampered(good, "sig", "0" * 32))
    assert (kind, status, code) == (BadSignature, 401, 703)


def test_a_push_without_sig_is_refused_with_401(meituan: Platform) -> None:
    values = signed_params("order_paid", order(), secret=FIXTURE_SECRET, app_id=FIXTURE_APP_ID)
    del values["sig"]
    kind, status, code, _ = refused(meituan, "order_paid", urlencode(values).encode())
    assert (kind, status, code) == (BadSignature, 401, 703)


def test_a_push_for_another_app_id_is_refused_with_401(meituan: Platform) -> None:
    # correctly signed with our secret, but for app 9999
    content = body("order_paid", order(), app_id="9999")
    kind, status, code, _ = refused(meituan, "order_paid", content)
    assert (kind, status, code) == (BadSignature, 401, 702)
    kind, status, code, _ = refused(meituan, "order_paid", body("order_paid", order(), app_id=None))
    assert (kind, status, code) == (BadSignature, 401, 702)


def test_a_push_signed_for_another_url_is_refused_with_401(meituan: Platform) -> None:
    for_confirmed = body("order_confirmed", order(status=4))
    kind, status, code, _ = refused(meituan, "order_paid", for_confirmed)
    assert (kind, status, code) == (BadSignature, 401, 703)
    elsewhere = body("order_paid", order(), public_base_url="https://other.example.com")
    kind, status, code, _ = refused(meituan, "order_paid", elsewhere)
    assert (kind, status, code) == (BadSignature, 401, 703)


def test_a_push_with_a_wrong_secret_is_refused(meituan: Platform) -> None:
    content = body("order_paid", order(), secret=FIXTURE_SECRET + "x")
    assert refused(meituan, "order_paid", content)[:3] == (BadSignature, 401, 703)


def test_an_unknown_app_poi_code_is_refused_with_400(meituan: Platform) -> None:
    content = body("order_paid", order(app_poi_code="STORE-404"))
    kind, status, code, exc = refused(meituan, "order_paid", content)
    assert (kind, status, code) == (UnknownStore, 400, 704)
    assert "STORE-404" in exc.message


def test_undecodable_pushes_are_refused_with_400(meituan: Platform) -> None:
    assert refused(meituan, "order_paid", b'{"order_id": 1}')[:3] == (UndecodablePush, 400, 705)
    assert refused(meituan, "order_paid", b"\xff\xfe=1")[:3] == (UndecodablePush, 400, 705)
    broken = body("order_paid", order(detail="[{not json"))
    assert refused(meituan, "order_paid", broken)[:3] == (UndecodablePush, 400, 705)
    no_order = body("order_paid", order(order_id=None))
    assert refused(meituan, "order_paid", no_order)[:3] == (UndecodablePush, 400, 701)
    unknown = body("refund", refund("explode", res_type="99"))
    assert refused(meituan, "refund", unknown)[:3] == (UndecodablePush, 400, 705)
    rider = body("logistics", logistics(30, T_PAID))
    assert refused(meituan, "logistics", rider)[:3] == (UndecodablePush, 400, 705)
    twice = body("order_paid", order()) + b"&order_id=2"
    assert refused(meituan, "order_paid", twice)[:2] == (UndecodablePush, 400)
    nul = body("order_paid", order(caution="no\x00chili"))  # no database text holds it
    assert refused(meituan, "order_paid", nul)[:3] == (UndecodablePush, 400, 705)
    nul_in_json = body("order_paid", order(detail=[{**DETAIL[0], "food_name": "a\x00"}]))
    assert refused(meituan, "order_paid", nul_in_json)[:3] == (UndecodablePush, 400, 705)


def test_secrets_never_appear_in_refusals(meituan: Platform) -> None:
    for content in (
        tampered(body("order_paid", order()), "total", "1"),
        body("order_paid", order(app_poi_code="X")),
        body("order_paid", order(), app_id="1"),
    ):
        _, _, _, exc = refused(meituan, "order_paid", content)
        assert FIXTURE_SECRET not in str(exc)
        assert FIXTURE_SECRET not in exc.reply.body


def test_pushes_without_a_store_code_go_to_the_first_bound_store(meituan: Platform) -> None:
    event = only_event(meituan, "logistics", body("logistics", logistics(20, T_PAID + 60)))
    assert event.store_id == "S001"
    single = fixture_config().model_copy(update={"stores": {"S009": {"app_poi_code": "P9"}}})
    parsed = meituan.parse_event(
        request("refund", body("refund", refund("apply"))), PluginConfig(**single.model_dump())
    )
    assert parsed is not None
    assert parsed.events[0].store_id == "S009"
    nobody = PluginConfig(**{**single.model_dump(), "stores": {}})
    with pytest.raises(UnknownStore):
        meituan.parse_event(request("refund", body("refund", refund("apply"))), nobody)


def test_a_store_code_names_its_own_store(meituan: Platform) -> None:
    event = only_event(meituan, "order_paid", body("order_paid", order(app_poi_code="STORE-002")))
    assert event.store_id == "S002"


def test_the_native_code_is_the_kind_and_its_value(meituan: Platform) -> None:
    cases = {
        ("order_confirmed", json.dumps(order(status=4))): "order_confirmed",
        ("refund", json.dumps(refund("cancelRefundComplaint"))): "refund.cancelRefundComplaint",
        ("partial_refund", json.dumps(partial("part"))): "partial_refund.part",
        ("logistics", json.dumps(logistics(100, T_PAID))): "logistics.100",
        ("order_cancelled", json.dumps(cancel("1102"))): "order_cancelled",
    }
    for (kind, params), code in cases.items():
        assert only_event(meituan, kind, body(kind, json.loads(params))).native_code == code


def test_an_unknown_notify_type_is_read_from_res_type(meituan: Platform) -> None:
    # platforms.md §3.7: accept unknown values; res_type 2 = 商家同意
    event = only_event(
        meituan, "partial_refund", body("partial_refund", partial("done", res_type="2"))
    )
    assert event.native_code == "partial_refund.agree"
    assert event.idempotency_key == f"partial_refund.agree:{ORDER_ID}:68012345679"


def test_a_redelivered_push_has_the_same_key_and_another_push_another(meituan: Platform) -> None:
    first = only_event(meituan, "refund", body("refund", refund("apply"), timestamp=100))
    again = only_event(meituan, "refund", body("refund", refund("apply"), timestamp=200))
    agreed = only_event(meituan, "refund", body("refund", refund("agree", res_type="2")))
    other = only_event(meituan, "refund", body("refund", refund("apply", refund_id="7")))
    assert first.idempotency_key == again.idempotency_key == f"refund.apply:{ORDER_ID}:68012345678"
    assert len({first.idempotency_key, agreed.idempotency_key, other.idempotency_key}) == 3
    rider = only_event(meituan, "logistics", body("logistics", logistics(10, T_PAID + 60)))
    assert rider.idempotency_key == f"logistics.10:{ORDER_ID}:{T_PAID + 60}"


def test_kinds_without_identity_fields_are_keyed_by_a_hash_of_their_params(
    meituan: Platform,
) -> None:
    remind = {"order_id": ORDER_ID, "remind_time": str(T_PAID + 900), "remind_id": "1"}
    first = only_event(meituan, "reminder", body("reminder", remind, timestamp=1))
    again = only_event(meituan, "reminder", body("reminder", remind, timestamp=2))
    other = only_event(meituan, "reminder", body("reminder", {**remind, "remind_id": "2"}))
    assert first.idempotency_key == again.idempotency_key != other.idempotency_key
    assert first.idempotency_key.startswith(f"reminder:{ORDER_ID}:")
    assert first.platform_time_ms == 1000  # no time field: the system timestamp


def test_the_platform_time_prefers_utime_then_time_then_ctime_then_timestamp(
    meituan: Platform,
) -> None:
    paid = only_event(meituan, "order_paid", body("order_paid", order(utime=None)))
    assert paid.platform_time_ms == (T_PAID - 7) * 1000  # ctime
    cancelled = only_event(
        meituan, "order_cancelled", body("order_cancelled", cancel("1102"), timestamp=1_716_200_000)
    )
    assert cancelled.platform_time_ms == 1_716_200_000_000
    rider = only_event(meituan, "logistics", body("logistics", logistics(40, T_PAID + 99)))
    assert rider.platform_time_ms == (T_PAID + 99) * 1000


def test_a_listed_field_that_was_not_double_encoded_is_kept_as_signed(meituan: Platform) -> None:
    # a caution with a literal "+" and "%41" sent single-encoded (§6.3: not confirmed that
    # every listed field is always double-encoded): the sig tells which reading is right
    params = order(caution="加辣+醋 100%41")
    content = body("order_paid", params, double_encode=False)
    event = only_event(meituan, "order_paid", content)
    assert event.payload["caution"] == "加辣+醋 100%41"
    double = only_event(meituan, "order_paid", body("order_paid", params))
    assert double.payload["caution"] == "加辣+醋 100%41"


STORABLE = st.characters(codec="utf-8", exclude_characters="\x00")
"""Any character a database text holds (a NUL is refused, tested on its own)."""


@settings(max_examples=150, deadline=None)
@given(
    caution=st.text(STORABLE, max_size=30),
    reason=st.text(STORABLE, max_size=30),
    name=st.text(STORABLE, min_size=1, max_size=20),
    method=st.sampled_from(["POST", "GET"]),
)
def test_double_encoding_round_trips_any_text(
    meituan: Platform, caution: str, reason: str, name: str, method: str
) -> None:
    params = order(
        caution=caution, recipient_name=reason, detail=[{**DETAIL[0], "food_name": name}]
    )
    event = only_event(meituan, "order_paid", body("order_paid", params), method)
    assert event.payload["caution"] == caution
    assert event.payload["recipient_name"] == reason
    assert event.payload["detail"][0]["food_name"] == name


# --------------------------------------------------------------------------- mapping


def test_the_state_table_covers_exactly_the_manifest(meituan: Platform) -> None:
    declared = {row.code: set(row.maps_to) for row in meituan.manifest.native_codes}
    assert set(states.STATES) == set(declared)
    for code, state in states.STATES.items():
        assert (state is None and not declared[code]) or state in declared[code], code
    assert set(declared) == push.NATIVE_CODES


def mapped(meituan: Platform, kind: str, params: dict[str, Any]) -> StateChange:
    event = only_event(meituan, kind, body(kind, params))
    change = meituan.map_state(event)
    assert meituan.map_state(event) == change  # pure
    return change


@pytest.mark.parametrize(
    ("kind", "params", "state"),
    [
        ("order_paid", order(), PlatformState.CREATED),
        ("order_confirmed", order(status=4), PlatformState.ACCEPTED),
        ("order_completed", order(status=8), PlatformState.COMPLETED),
        ("logistics", logistics(10, T_PAID), PlatformState.RIDER_AWAITING_PICKUP),
        ("logistics", logistics(15, T_PAID), PlatformState.RIDER_AT_STORE),
        ("logistics", logistics(20, T_PAID), PlatformState.RIDER_DELIVERING),
        ("logistics", logistics(40, T_PAID), PlatformState.RIDER_DELIVERED),
        ("logistics", logistics(0, T_PAID), None),
        ("logistics", logistics(5, T_PAID), None),
        ("logistics", logistics(100, T_PAID), None),
        ("refund_status", {"order_id": ORDER_ID, "refund_id": "1", "refund_status": "3",
                           "money": "34.0", "ctime": "1", "utime": "2"}, None),
    ],
)  # fmt: skip
def test_order_and_rider_pushes_map_to_the_baseline(
    meituan: Platform, kind: str, params: dict[str, Any], state: PlatformState | None
) -> None:
    assert mapped(meituan, kind, params) == StateChange(state=state)


@pytest.mark.parametrize(
    ("reason_code", "state"),
    [
        ("1001", PlatformState.CANCELLED),
        ("1102", PlatformState.CANCELLED),
        ("2001", PlatformState.CANCELLED),
        ("1103", PlatformState.FORCE_INVALIDATED),
        ("1201", PlatformState.FORCE_INVALIDATED),
        ("2009", PlatformState.FORCE_INVALIDATED),
        ("9999", PlatformState.FORCE_INVALIDATED),
    ],
)
def test_a_cancel_before_acceptance_is_cancelled_and_after_force_invalidated(
    meituan: Platform, reason_code: str, state: PlatformState
) -> None:
    change = mapped(meituan, "order_cancelled", cancel(reason_code))
    assert change == StateChange(state=state, reason=f"{reason_code} 用户取消")


@pytest.mark.parametrize(
    ("notify_type", "state"),
    [
        ("apply", PlatformState.REFUND_REQUESTED),
        ("agree", PlatformState.REFUND_AGREED),
        ("reject", PlatformState.REFUND_REJECTED),
        ("cancelRefund", PlatformState.REFUND_WITHDRAWN),
        ("cancelRefundComplaint", PlatformState.REFUND_WITHDRAWN),
    ],
)
def test_full_refunds_map_to_the_refund_family(
    meituan: Platform, notify_type: str, state: PlatformState
) -> None:
    change = mapped(meituan, "refund", refund(notify_type))
    assert change == StateChange(state=state, partial=False, reason="不想要了")


@pytest.mark.parametrize(
    ("notify_type", "state"),
    [
        ("part", PlatformState.REFUND_REQUESTED),
        ("apply", PlatformState.REFUND_REQUESTED),
        ("agree", PlatformState.REFUND_AGREED),
        ("reject", PlatformState.REFUND_REJECTED),
        ("cancelRefund", PlatformState.REFUND_WITHDRAWN),
    ],
)
def test_partial_refunds_carry_their_amount_and_lines(
    meituan: Platform, notify_type: str, state: PlatformState
) -> None:
    change = mapped(meituan, "partial_refund", partial(notify_type))
    assert change == StateChange(
        state=state,
        partial=True,
        refund_amount_fen=500,
        refunded_items=[
            RefundedItem(
                name="可乐", quantity=1, sku_code="SKU-2002-330", platform_sku_id="SKU-2002",
                amount_fen=500,
            )
        ],
        reason="不想要了",
    )  # fmt: skip


def test_refunded_lines_without_a_count_or_price_are_read_as_stated(meituan: Platform) -> None:
    food = [
        {"app_food_code": "A", "sku_id": "", "food_name": "饺子", "count": 2.0,
         "refund_price": 6.5},
        {"app_food_code": "B", "food_name": "汤", "count": 0},
        {"app_food_code": "C", "food_name": "", "count": "1"},
        "not a line",
    ]  # fmt: skip
    change = mapped(meituan, "partial_refund", partial("agree", food=food, money="13.01"))
    assert change.refund_amount_fen == 1301
    assert change.refunded_items == [
        RefundedItem(name="饺子", quantity=2, sku_code="A", platform_sku_id="A", amount_fen=1300),
        RefundedItem(name="C", quantity=1, sku_code="C", platform_sku_id="C", amount_fen=None),
    ]


# --------------------------------------------------------------------------- prices


def price_of(meituan: Platform, params: dict[str, Any], config: PluginConfig = CONFIG) -> Any:
    event = only_event(meituan, "order_paid", body("order_paid", params))
    return meituan.price_breakdown(event, config)


SAMPLE_PRICE = {
    "items": [
        {"sku_code": "SKU-1001-L", "platform_sku_id": "SKU-1001", "name": "宫保鸡丁",
         "quantity": 1, "unit_original": 2800, "unit_paid": 2800, "product_id": None},
        {"sku_code": "SKU-2002-330", "platform_sku_id": "SKU-2002", "name": "可乐",
         "quantity": 2, "unit_original": 500, "unit_paid": 500, "product_id": None},
    ],
    "original_amount": 4400, "packaging_fee": 100, "delivery_fee": 500,
    "merchant_discount": 800, "platform_discount": 200, "user_paid": 3400,
    "commission": 465, "merchant_income": 2635,
}  # fmt: skip


def test_the_sample_order_price_breakdown(meituan: Platform) -> None:
    assert price_of(meituan, order()) == PriceBreakdown.model_validate(SAMPLE_PRICE)


def test_without_the_receive_detail_subscription_income_and_commission_are_null(
    meituan: Platform,
) -> None:
    price = price_of(meituan, order(poi_receive_detail=None))
    assert price == PriceBreakdown.model_validate(
        {**SAMPLE_PRICE, "commission": None, "merchant_income": None}
    )
    empty = price_of(meituan, order(poi_receive_detail=""))
    assert (empty.commission, empty.merchant_income) == (None, None)
    in_yuan = order(poi_receive_detail=None, poi_receive_detail_yuan={"poiReceive": "26.35"})
    yuan = price_of(meituan, in_yuan)
    assert (yuan.commission, yuan.merchant_income) == (None, 2635)


DISCOUNTED_LINE = {
    "app_food_code": "F1", "sku_id": "F1-S", "food_name": "牛肉面", "price": 18.0,
    "quantity": 2, "box_num": 1, "box_price": 0.5,
}  # fmt: skip


ITEM_ACTIVITY = {"type": 17, "reduce_fee": 4.0, "poi_charge": 4.0, "mt_charge": 0,
                 "remark": "折扣商品"}  # fmt: skip
ORDER_DISCOUNT = {"type": 2, "reduce_fee": 5.0, "poi_charge": 5.0, "mt_charge": 0,
                  "remark": "满40减5"}  # fmt: skip


def test_price_semantics_give_the_same_push_its_two_readings(meituan: Platform) -> None:
    # 牛肉面 ×2 with a 2-yuan item activity each: original_price 45.5 = 2 × 20 + box 0.5
    # + shipping 5; the user paid 45.5 − 4 (折扣商品) − 5 (满减) = 36.5
    params = order(detail=[DISCOUNTED_LINE], total="36.5", original_price="45.5",
                   extras=[ITEM_ACTIVITY, ORDER_DISCOUNT])  # fmt: skip
    discounted = price_of(meituan, params)
    original = price_of(meituan, params, fixture_config(price_semantics="original"))
    # discounted: 18 is what was paid; the 4 yuan original_price has above the lines is
    # the activity, 2 yuan a bowl
    assert [(i.unit_original, i.unit_paid) for i in discounted.items] == [(2000, 1800)]
    # original: 18 is the list price; the 折扣商品 extra takes 4 yuan off the two bowls
    assert [(i.unit_original, i.unit_paid) for i in original.items] == [(1800, 1600)]
    for price in (discounted, original):
        assert (price.original_amount, price.user_paid, price.packaging_fee) == (4550, 3650, 50)
        assert (price.merchant_discount, price.platform_discount) == (900, 0)


def test_the_item_discount_is_spread_over_the_lines_that_state_no_other_figure(
    meituan: Platform,
) -> None:
    cola = {"app_food_code": "C1", "sku_id": "C1-S", "food_name": "可乐", "price": 5.0,
            "quantity": 1, "box_num": 0, "box_price": 0}  # fmt: skip
    chips = {"app_food_code": "R1", "sku_id": "", "food_name": "薯片", "price": 9.5,
             "original_price": 12.0, "quantity": 1}  # fmt: skip
    # discounted: lines 36 + 12 (stated) + 5, box 0.5, shipping 5 → 58.5; 1 yuan unexplained
    params = order(detail=[DISCOUNTED_LINE, chips, cola], total="49.5", original_price="59.5")
    price = price_of(meituan, params)
    # 100 fen over 3600 : 500 → 88 (44 a bowl) and 12; the chips keep their stated figures
    assert [(i.unit_original, i.unit_paid) for i in price.items] == [
        (1844, 1800), (1200, 950), (512, 500),
    ]  # fmt: skip
    total = sum(i.unit_original * i.quantity for i in price.items)
    assert total + price.packaging_fee + price.delivery_fee == price.original_amount == 5950
    # original: the chips state what was paid (12 → 9.5); the rest of the activities,
    # 6.5 − 2.5 = 4 yuan, goes over 4000 : 500 → 356 (178 a bowl) and 44
    listed = [
        {**DISCOUNTED_LINE, "price": 20.0},
        {**chips, "price": 12.0, "original_price": None, "actual_price": 9.5},
        cola,
    ]
    activity = {**ITEM_ACTIVITY, "reduce_fee": 6.5, "poi_charge": 6.5}
    params = order(detail=listed, total="53.0", original_price="59.5", extras=[activity])
    price = price_of(meituan, params, fixture_config(price_semantics="original"))
    assert [(i.unit_original, i.unit_paid) for i in price.items] == [
        (2000, 1822), (1200, 950), (500, 456),
    ]  # fmt: skip
    # without the activity, or with the original_price the lines add up to, nothing moves
    plain = price_of(meituan, order(detail=listed, extras=[ORDER_DISCOUNT]),
                     fixture_config(price_semantics="original"))  # fmt: skip
    assert [(i.unit_original, i.unit_paid) for i in plain.items] == [
        (2000, 2000), (1200, 950), (500, 500),
    ]  # fmt: skip
    exact = price_of(meituan, order(detail=[DISCOUNTED_LINE], original_price="41.5"))
    assert [(i.unit_original, i.unit_paid) for i in exact.items] == [(1800, 1800)]


def test_a_store_can_override_the_apps_price_semantics(meituan: Platform) -> None:
    retail = {**DISCOUNTED_LINE, "actual_price": "15.0", "original_price": "20.0"}
    plain = {**DISCOUNTED_LINE}
    event = only_event(
        meituan, "order_paid", body("order_paid", order(app_poi_code="STORE-002", detail=[plain]))
    )
    assert event.store_id == "S002"
    from waimai_bridge_meituan.prices import price_semantics

    assert price_semantics(CONFIG, "S002") == "original"
    assert price_semantics(CONFIG, "S001") == "discounted"
    assert price_semantics(fixture_config(price_semantics="original"), "S001") == "original"
    price = meituan.price_breakdown(event, CONFIG)
    assert price is not None
    assert [(i.unit_original, i.unit_paid) for i in price.items] == [(1800, 1800)]
    stated = price_of(meituan, order(app_poi_code="STORE-002", detail=[retail]))
    assert [(i.unit_original, i.unit_paid) for i in stated.items] == [(2000, 1500)]


def test_discounts_without_their_split_follow_the_receive_detail_else_the_merchant(
    meituan: Platform,
) -> None:
    unsplit = [{"reduce_fee": 10.0, "remark": "满30减10", "type": 2}, {}]
    price = price_of(meituan, order(extras=unsplit))
    assert (price.merchant_discount, price.platform_discount) == (800, 200)
    alone = price_of(meituan, order(extras=unsplit, poi_receive_detail=None))
    assert (alone.merchant_discount, alone.platform_discount) == (1000, 0)
    none = price_of(meituan, order(extras=[], package_bag_money="150"))
    assert (none.merchant_discount, none.platform_discount, none.packaging_fee) == (0, 0, 250)


def test_pushes_without_an_order_have_no_price(meituan: Platform) -> None:
    for kind, params in (
        ("refund", refund("apply")),
        ("partial_refund", partial("part")),
        ("logistics", logistics(20, T_PAID)),
        ("order_cancelled", cancel("1102")),
    ):
        event = only_event(meituan, kind, body(kind, params))
        assert meituan.price_breakdown(event, CONFIG) is None


def test_money_is_read_exactly_in_fen(meituan: Platform) -> None:
    line = {**DISCOUNTED_LINE, "price": 0.1, "quantity": 3, "box_num": 3, "box_price": 0.1}
    price = price_of(meituan, order(detail=[line], total="0.3", shipping_fee="0.2",
                                    original_price="0.8"))  # fmt: skip
    assert (price.items[0].unit_paid, price.packaging_fee, price.delivery_fee) == (10, 30, 20)
    assert (price.user_paid, price.original_amount) == (30, 80)


# --------------------------------------------------------------------------- details


def details_of(meituan: Platform, params: dict[str, Any]) -> OrderDetails | None:
    event = only_event(meituan, "order_paid", body("order_paid", params))
    return meituan.order_details(event, CONFIG)


def test_an_order_push_gives_its_day_sequence_number_and_remark(meituan: Platform) -> None:
    assert details_of(meituan, order()) == OrderDetails(
        day_seq=12, remark="少放辣 收餐人隐私号 18400001234_5678，手机号 184****1234"
    )  # caution decoded a second time; as stated, the privacy number included
    unsubscribed = details_of(meituan, order(day_seq=None, caution=""))
    assert unsubscribed == OrderDetails(day_seq=None, remark=None)
    for kind, params in (("refund", refund("apply")), ("order_cancelled", cancel("1102"))):
        event = only_event(meituan, kind, body(kind, params))
        assert meituan.order_details(event, CONFIG) is None


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"day_seq": "-3"}, OrderDetails(day_seq=None, remark="少辣")),
        ({"day_seq": "1000001"}, OrderDetails(day_seq=None, remark="少辣")),
        ({"day_seq": "9" * 400}, OrderDetails(day_seq=None, remark="少辣")),
        ({"day_seq": "12.5"}, OrderDetails(day_seq=None, remark="少辣")),
        ({"day_seq": "²"}, OrderDetails(day_seq=None, remark="少辣")),
        ({"caution": "辣" * 5000}, OrderDetails(day_seq=12, remark="辣" * 500)),
        ({"caution": "   "}, OrderDetails(day_seq=12, remark=None)),
    ],
    ids=["negative", "too large", "huge", "not whole", "not ascii", "huge remark", "blank"],
)
def test_hostile_details_are_bounded_never_refused(
    meituan: Platform, changes: dict[str, Any], expected: OrderDetails
) -> None:
    assert details_of(meituan, order(caution="少辣") | changes) == expected


def test_an_order_read_from_the_api_states_its_day_sequence_number_as_a_number() -> None:
    assert details.details({"detail": [], "day_seq": 7, "caution": "不要葱"}) == OrderDetails(
        day_seq=7, remark="不要葱"
    )
    assert details.details({"detail": [], "day_seq": True}) == OrderDetails()
    assert details.details({"detail": "[]", "day_seq": 7}) is None
