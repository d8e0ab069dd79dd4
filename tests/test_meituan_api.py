"""The Meituan plugin's outbound actions, over real HTTP against the plugin's fake API."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from waimai_bridge_meituan import api
from waimai_bridge_meituan.signing import sig
from waimai_bridge_meituan.testing import (
    FIXTURE_APP_ID,
    FIXTURE_SECRET,
    FakeAnswer,
    FakeMeituan,
    fixture_config,
)

from tests.processes import free_port
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import Action, ActionOutcome, ActionRequest, ActionResult

ORDER_ID = "27061900338318741"


@pytest.fixture
def fake() -> Iterator[FakeMeituan]:
    with FakeMeituan() as running:
        yield running


def action(name: Action, reason: str | None = None, attempt: int = 1) -> ActionRequest:
    return ActionRequest(
        action_id="A1",
        action=name,
        platform_order_id=ORDER_ID,
        store_id="S001",
        reason=reason,
        attempt=attempt,
    )


def perform(
    meituan: Platform, fake: FakeMeituan, request: ActionRequest, **settings: object
) -> ActionResult:
    config = fixture_config(api_base=fake.api_base, **settings)
    return meituan.outbound_action(request, config)


DONE = ActionResult(outcome=ActionOutcome.DONE)


@pytest.mark.parametrize(
    ("name", "reason", "path", "params"),
    [
        (Action.CONFIRM, None, "order/confirm", {}),
        (Action.CANCEL, "商品已售完", "order/cancel",
         {"reason": "商品已售完", "reason_code": "2009"}),
        (Action.AGREE_REFUND, None, "order/refund/agree", {"reason": "同意退款"}),
        (Action.AGREE_CANCEL, "好的", "order/refund/agree", {"reason": "好的"}),
        (Action.REJECT_REFUND, "已送达", "order/refund/reject", {"reason": "已送达"}),
        (Action.REJECT_CANCEL, None, "order/refund/reject", {"reason": "商家拒绝退款"}),
        (Action.MEAL_READY, None, "order/preparationMealComplete", {}),
    ],
)  # fmt: skip
def test_every_action_reaches_the_fake_correctly_signed(
    meituan: Platform,
    fake: FakeMeituan,
    name: Action,
    reason: str | None,
    path: str,
    params: dict[str, str],
) -> None:
    before = int(time.time())
    assert perform(meituan, fake, action(name, reason)) == DONE
    [call] = fake.calls
    assert (call.method, call.path, call.sig_ok) == ("GET", path, True)
    assert call.params == {"order_id": ORDER_ID, **params}
    assert call.system["app_id"] == FIXTURE_APP_ID
    assert before <= int(call.system["timestamp"]) <= int(time.time())
    assert call.answer == FakeAnswer.ok()
    expected = sig(fake.api_base + path, {**call.params, **call.system}, FIXTURE_SECRET)
    assert call.system["sig"] == expected


def test_the_manifest_lists_exactly_the_supported_actions(meituan: Platform) -> None:
    assert set(meituan.manifest.actions) == set(api.ENDPOINTS)


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        ("2011 今天打烊了", "2011"),
        ("店铺太忙，无法接单", "2008"),
        ("Sold out of noodles", "2009"),
        ("联系不上用户", "2012"),
        ("20110", "2007"),
        ("1102", "2007"),
        ("顾客要求", "2007"),
        (None, "2007"),
    ],
)
def test_a_cancel_reason_maps_to_a_merchant_reason_code(reason: str | None, code: str) -> None:
    assert api.cancel_reason_code(reason) == code


def test_a_cancel_without_reason_still_sends_one(meituan: Platform, fake: FakeMeituan) -> None:
    assert perform(meituan, fake, action(Action.CANCEL)) == DONE
    assert fake.calls[0].params == {
        "order_id": ORDER_ID,
        "reason": "其他原因",
        "reason_code": "2007",
    }


@pytest.mark.parametrize(("code", "msg"), [(700, "系统错误"), (711, "接口调用过于频繁")])
def test_system_errors_and_rate_limits_are_transient(
    meituan: Platform, fake: FakeMeituan, code: int, msg: str
) -> None:
    fake.script("order/refund/agree", FakeAnswer.error(code, msg), FakeAnswer.ok())
    first = perform(meituan, fake, action(Action.AGREE_REFUND))
    assert first == ActionResult(outcome=ActionOutcome.TRANSIENT, code=str(code), message=msg)
    assert perform(meituan, fake, action(Action.AGREE_REFUND, attempt=2)) == DONE
    assert [call.answer.status for call in fake.calls_to("order/refund/agree")] == [200, 200]
    assert all(call.sig_ok for call in fake.calls)


@pytest.mark.parametrize(
    ("code", "msg"),
    [
        (701, "缺少参数"), (702, "app_id不存在"), (703, "签名验证错误"), (704, "无权限操作此数据"),
        (705, "参数格式错误"), (708, "无权限访问接口"), (806, "不存在此订单"),
        (808, "操作失败，订单状态已变更"), (1022, "该订单已完成无法取消"),
    ],
)  # fmt: skip
def test_other_platform_errors_are_final_with_code_and_message(
    meituan: Platform, fake: FakeMeituan, code: int, msg: str
) -> None:
    fake.script("order/cancel", FakeAnswer.error(code, msg))
    result = perform(meituan, fake, action(Action.CANCEL, "店铺太忙"))
    assert result == ActionResult(outcome=ActionOutcome.REJECTED, code=str(code), message=msg)


def test_a_wrong_secret_is_refused_by_the_fake_as_meituan_would(
    meituan: Platform, fake: FakeMeituan
) -> None:
    result = perform(meituan, fake, action(Action.CONFIRM), app_secret="not-the-secret")
    assert result == ActionResult(
        outcome=ActionOutcome.REJECTED, code="703", message="签名验证错误"
    )
    assert [call.sig_ok for call in fake.calls] == [False]


def test_a_wrong_app_id_is_refused_by_the_fake(meituan: Platform, fake: FakeMeituan) -> None:
    result = perform(meituan, fake, action(Action.CONFIRM), app_id="9999")
    assert (result.outcome, result.code) == (ActionOutcome.REJECTED, "702")


def test_http_errors_without_meituans_body(meituan: Platform, fake: FakeMeituan) -> None:
    fake.script("order/confirm", FakeAnswer.http(503), FakeAnswer.http(429, ""))
    fake.script("order/confirm", FakeAnswer.http(404, "no such page"))
    fake.script("order/confirm", FakeAnswer.http(200, "<html>maintenance</html>"))
    results = [perform(meituan, fake, action(Action.CONFIRM)) for _ in range(4)]
    assert [(result.outcome, result.code) for result in results] == [
        (ActionOutcome.TRANSIENT, "http_503"),
        (ActionOutcome.TRANSIENT, "http_429"),
        (ActionOutcome.REJECTED, "http_404"),
        (ActionOutcome.TRANSIENT, None),
    ]


def test_a_5xx_with_meituans_error_body_follows_the_code(
    meituan: Platform, fake: FakeMeituan
) -> None:
    fake.script("order/confirm", FakeAnswer.error(808, "订单状态已变更", status=500))
    result = perform(meituan, fake, action(Action.CONFIRM))
    assert (result.outcome, result.code) == (ActionOutcome.REJECTED, "808")


def test_a_read_time_out_after_sending_is_unknown(meituan: Platform, fake: FakeMeituan) -> None:
    fake.script("order/confirm", FakeAnswer.slow(2.0))
    result = perform(meituan, fake, action(Action.CONFIRM), api_timeout_seconds=0.3)
    # the request reached the fake, which acted on it; the client gave up at 0.3 s
    assert result.outcome is ActionOutcome.UNKNOWN
    assert result.code is None
    assert result.message == "no answer within 0.3 s after the request was sent"
    assert [call.path for call in fake.calls] == ["order/confirm"]


@pytest.mark.parametrize("answer", [FakeAnswer.dropped(), FakeAnswer.lost()])
def test_a_connection_closed_after_sending_is_unknown(
    meituan: Platform, fake: FakeMeituan, answer: FakeAnswer
) -> None:
    fake.script("order/confirm", answer)
    result = perform(meituan, fake, action(Action.CONFIRM))
    assert result.outcome is ActionOutcome.UNKNOWN
    assert result.message == (
        "the connection broke after the request was sent: RemoteProtocolError"
    )


def test_a_connect_time_out_is_transient(meituan: Platform) -> None:
    # 192.0.2.1 (TEST-NET-1) is never routed: the connection cannot be made
    config = fixture_config(api_base="http://192.0.2.1/api/v1/", api_timeout_seconds=0.2)
    result = meituan.outbound_action(action(Action.CONFIRM), config)
    assert result.outcome is ActionOutcome.TRANSIENT
    assert result.message is not None
    assert result.message.startswith(("no connection within 0.2 s", "network error: "))


def test_a_network_error_is_transient(meituan: Platform) -> None:
    config = fixture_config(api_base=f"http://127.0.0.1:{free_port()}/api/v1/")
    result = meituan.outbound_action(action(Action.CONFIRM), config)
    assert result.outcome is ActionOutcome.TRANSIENT
    assert result.message is not None
    assert result.message.startswith("network error: ")


def test_the_secret_never_appears_in_a_result(meituan: Platform, fake: FakeMeituan) -> None:
    fake.script("order/confirm", FakeAnswer.error(705, f"bad sig base ...{FIXTURE_SECRET}"))
    result = perform(meituan, fake, action(Action.CONFIRM))
    assert FIXTURE_SECRET not in str(result)
    assert result.message == "bad sig base ...***"


def test_the_fake_checks_the_sig_exactly(fake: FakeMeituan) -> None:
    url = fake.api_base + "order/confirm"
    params = {"order_id": "1", "app_id": FIXTURE_APP_ID, "timestamp": "1716181200"}
    good = {**params, "sig": sig(url, params, FIXTURE_SECRET)}
    assert httpx.get(url, params=good).json() == {"data": "ok"}
    tampered = {**good, "order_id": "2"}
    assert httpx.get(url, params=tampered).json() == {
        "data": "ng",
        "error": {"code": 703, "msg": "签名验证错误"},
    }
    no_timestamp = {"order_id": "1", "app_id": FIXTURE_APP_ID}
    unsigned = {**no_timestamp, "sig": sig(url, no_timestamp, FIXTURE_SECRET)}
    assert httpx.get(url, params=unsigned).json()["error"]["code"] == 703
    another = {**params, "order_id": "3"}  # order 1 is confirmed: a repeat is answered 808
    posted = httpx.post(url, data={**another, "sig": sig(url, another, FIXTURE_SECRET)})
    assert posted.json() == {"data": "ok"}
    assert [call.sig_ok for call in fake.calls] == [True, False, True, True]
    assert [call.method for call in fake.calls] == ["GET", "GET", "GET", "POST"]
