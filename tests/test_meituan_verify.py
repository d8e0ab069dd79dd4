"""The Meituan plugin's verify_action against its fake API: an action whose answer was lost
(``unknown``) settled by reading the order, done where it took effect, transient where it
did not, rejected where it no longer can, unknown where the read fails too."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from waimai_bridge_meituan import assumptions
from waimai_bridge_meituan.examples import ORDER_ID, T_PAID, cancel, order, refund
from waimai_bridge_meituan.testing import (
    FIXTURE_APP_ID,
    FIXTURE_SECRET,
    FakeAnswer,
    FakeMeituan,
    HarnessFake,
    fixture_config,
    push_request,
    signed_push,
)

from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import Action, ActionOutcome, ActionRequest, ActionResult, PluginConfig

A = Action
DONE, TRANSIENT, REJECTED, UNKNOWN = (
    ActionOutcome.DONE, ActionOutcome.TRANSIENT, ActionOutcome.REJECTED, ActionOutcome.UNKNOWN,
)  # fmt: skip
REFUNDS_PATH = assumptions.REFUND_DETAIL_PATH
STATUS_PATH = assumptions.ORDER_STATUS_PATH


@pytest.fixture
def fake() -> Iterator[FakeMeituan]:
    with FakeMeituan() as running:
        yield running


def config_for(fake: FakeMeituan, **settings: Any) -> PluginConfig:
    return fixture_config(api_base=fake.api_base, **settings)


def request(action: Action, order_id: str = ORDER_ID) -> ActionRequest:
    return ActionRequest(
        action_id="A1", action=action, platform_order_id=order_id, store_id="S001", attempt=1
    )


def tell(fake: FakeMeituan, kind: str, params: dict[str, Any], *, at: int = T_PAID) -> None:
    body = signed_push(kind, params, secret=FIXTURE_SECRET, app_id=FIXTURE_APP_ID, timestamp=at)
    fake.pushed(push_request(kind, body), delivered=False)


def outcome(meituan: Platform, fake: FakeMeituan, action: Action) -> ActionOutcome:
    return meituan.verify_action(request(action), config_for(fake)).outcome


# --------------------------------------------------------------------------- answers lost


def test_a_confirm_whose_answer_timed_out_is_verified_done(
    meituan: Platform, fake: FakeMeituan
) -> None:
    tell(fake, "order_paid", order())
    fake.script("order/confirm", FakeAnswer.slow(2.0))  # confirmed, answered too late
    config = config_for(fake, api_timeout_seconds=0.3)
    assert meituan.outbound_action(request(A.CONFIRM), config).outcome is UNKNOWN
    assert meituan.verify_action(request(A.CONFIRM), config) == ActionResult(outcome=DONE)
    assert [call.path for call in fake.calls] == ["order/confirm", STATUS_PATH]


def test_an_answer_lost_after_the_cancel_took_effect_is_verified_done(
    meituan: Platform, fake: FakeMeituan
) -> None:
    tell(fake, "order_paid", order())
    fake.script("order/cancel", FakeAnswer.lost())
    assert meituan.outbound_action(request(A.CANCEL), config_for(fake)).outcome is UNKNOWN
    assert outcome(meituan, fake, A.CANCEL) is DONE
    assert len(fake.calls_to("order/cancel")) == 1


def test_an_error_answered_after_acting_makes_the_repeat_already_done(
    meituan: Platform, fake: FakeMeituan
) -> None:
    tell(fake, "order_paid", order())
    fake.script("order/confirm", FakeAnswer.after_acting(FakeAnswer.error(700, "系统错误")))
    first = meituan.outbound_action(request(A.CONFIRM), config_for(fake))
    assert (first.outcome, first.code) == (TRANSIENT, "700")
    repeat = meituan.outbound_action(request(A.CONFIRM), config_for(fake))
    assert (repeat.outcome, repeat.code, repeat.message) == (
        DONE, *assumptions.ALREADY_CONFIRMED,
    )  # fmt: skip


def test_a_call_dropped_before_it_took_effect_is_verified_transient(
    meituan: Platform, fake: FakeMeituan
) -> None:
    tell(fake, "order_paid", order())
    fake.script("order/confirm", FakeAnswer.dropped())
    assert meituan.outbound_action(request(A.CONFIRM), config_for(fake)).outcome is UNKNOWN
    result = meituan.verify_action(request(A.CONFIRM), config_for(fake))
    assert result == ActionResult(
        outcome=TRANSIENT, message="not taken effect on Meituan: the order's status is 2"
    )


# --------------------------------------------------------------------------- order actions


@pytest.mark.parametrize(
    ("pushes", "action", "expected"),
    [
        ([], A.CONFIRM, TRANSIENT),  # Meituan knows no such order: calling again says so
        (["order_paid"], A.CONFIRM, TRANSIENT),
        (["order_paid", "order_confirmed"], A.CONFIRM, DONE),
        (["order_paid", "order_completed"], A.CONFIRM, DONE),
        (["order_paid", "order_cancelled"], A.CONFIRM, REJECTED),
        (["order_paid"], A.CANCEL, TRANSIENT),
        (["order_paid", "order_confirmed"], A.CANCEL, TRANSIENT),
        (["order_paid", "order_cancelled"], A.CANCEL, DONE),
        (["order_paid", "order_completed"], A.CANCEL, REJECTED),
        (["order_paid", "order_completed"], A.MEAL_READY, REJECTED),
        (["order_paid", "order_cancelled"], A.MEAL_READY, REJECTED),
        (["order_paid"], A.MEAL_READY, TRANSIENT),
    ],
)  # fmt: skip
def test_an_order_action_is_read_against_the_order_status(
    meituan: Platform, fake: FakeMeituan, pushes: list[str], action: Action,
    expected: ActionOutcome,
) -> None:  # fmt: skip
    made = {
        "order_paid": order(),
        "order_confirmed": order(4, utime=T_PAID + 60),
        "order_completed": order(8, utime=T_PAID + 3000),
        "order_cancelled": cancel("1001"),
    }
    for kind in pushes:
        tell(fake, kind, made[kind])
    result = meituan.verify_action(request(action), config_for(fake))
    assert result.outcome is expected
    assert (result.message is None) is (expected is DONE)
    assert [call.path for call in fake.calls] == [STATUS_PATH]


def test_meal_ready_on_a_confirmed_order_is_settled_by_sending_it_again(
    meituan: Platform, fake: FakeMeituan
) -> None:
    tell(fake, "order_paid", order())
    tell(fake, "order_confirmed", order(4, utime=T_PAID + 60))
    assert outcome(meituan, fake, A.MEAL_READY) is DONE
    assert [call.path for call in fake.calls] == [STATUS_PATH, "order/preparationMealComplete"]
    fake.script("order/preparationMealComplete", FakeAnswer.error(808, "操作失败"))
    result = meituan.verify_action(request(A.MEAL_READY), config_for(fake))
    assert (result.outcome, result.code) == (REJECTED, "808")


# --------------------------------------------------------------------------- refund answers


@pytest.mark.parametrize(
    ("notify_types", "action", "expected"),
    [
        ([], A.AGREE_REFUND, TRANSIENT),
        (["apply"], A.AGREE_REFUND, TRANSIENT),
        (["apply", "agree"], A.AGREE_REFUND, DONE),
        (["apply", "agree"], A.AGREE_CANCEL, DONE),
        (["apply", "reject"], A.AGREE_REFUND, REJECTED),
        (["apply", "cancelRefund"], A.AGREE_REFUND, REJECTED),
        (["apply"], A.REJECT_REFUND, TRANSIENT),
        (["apply", "reject"], A.REJECT_CANCEL, DONE),
        (["apply", "agree"], A.REJECT_REFUND, REJECTED),
        (["apply", "cancelRefundComplaint"], A.REJECT_REFUND, REJECTED),
    ],
)
def test_a_refund_answer_is_read_against_the_latest_application(
    meituan: Platform, fake: FakeMeituan, notify_types: list[str], action: Action,
    expected: ActionOutcome,
) -> None:  # fmt: skip
    tell(fake, "order_paid", order())
    for notify_type in notify_types:
        tell(fake, "refund", refund(notify_type))
    assert outcome(meituan, fake, action) is expected
    [call] = fake.calls
    assert (call.path, call.params) == (REFUNDS_PATH, {"wm_order_id_view": ORDER_ID})


def test_the_latest_application_is_the_last_made(meituan: Platform, fake: FakeMeituan) -> None:
    tell(fake, "order_paid", order())
    tell(fake, "refund", refund("apply", "68000000002", ctime=str(T_PAID + 7200)))
    tell(fake, "refund", refund("agree", "68000000001", ctime=str(T_PAID + 3600)))
    # the agreed one was applied for first: the latest application is still open
    assert outcome(meituan, fake, A.AGREE_REFUND) is TRANSIENT
    tell(fake, "refund", refund("agree", "68000000002", ctime=str(T_PAID + 7200)))
    assert outcome(meituan, fake, A.AGREE_REFUND) is DONE


def test_an_agree_performed_is_verified_done_and_a_new_application_reopens(
    meituan: Platform, fake: FakeMeituan
) -> None:
    assert meituan.outbound_action(request(A.AGREE_REFUND), config_for(fake)).outcome is DONE
    assert outcome(meituan, fake, A.AGREE_REFUND) is DONE
    assert outcome(meituan, fake, A.REJECT_REFUND) is REJECTED
    fake.open_request(ORDER_ID)
    assert outcome(meituan, fake, A.AGREE_REFUND) is TRANSIENT


# --------------------------------------------------------------------------- reads that fail


@pytest.mark.parametrize(
    ("action", "path"), [(A.CONFIRM, STATUS_PATH), (A.AGREE_CANCEL, REFUNDS_PATH)]
)
def test_a_failed_read_leaves_the_outcome_unknown(
    meituan: Platform, fake: FakeMeituan, action: Action, path: str
) -> None:
    fake.script(path, FakeAnswer.error(700, f"系统错误 {FIXTURE_SECRET}"))
    result = meituan.verify_action(request(action), config_for(fake))
    assert (result.outcome, result.code) == (UNKNOWN, "700")
    assert result.message == f"{path}: 系统错误 ***"


def test_a_read_that_times_out_leaves_the_outcome_unknown(
    meituan: Platform, fake: FakeMeituan
) -> None:
    fake.script(STATUS_PATH, FakeAnswer.slow(2.0))
    result = meituan.verify_action(request(A.CONFIRM), config_for(fake, api_timeout_seconds=0.3))
    assert (result.outcome, result.code) == (UNKNOWN, None)


# --------------------------------------------------------------------------- the fake's order book


def test_the_harness_reset_keeps_what_the_fake_was_told(fake: FakeMeituan) -> None:
    tell(fake, "order_paid", order())
    HarnessFake(fake).reset()
    assert fake.calls == []
    assert [(push.kind, push.order_id, push.delivered) for push in fake.pushes] == [
        ("order_paid", ORDER_ID, False)
    ]
    fake.reset()
    assert fake.pushes == []


def test_a_push_the_fake_cannot_read_teaches_it_nothing(
    meituan: Platform, fake: FakeMeituan
) -> None:
    fake.pushed({"method": "POST", "kind": "order_paid", "query": [], "headers": {},
                 "body": ""}, delivered=True)  # fmt: skip
    fake.pushed({"method": "POST", "kind": "unknown", "query": [], "headers": {},
                 "body": "order_id=1"}, delivered=True)  # fmt: skip
    body = signed_push("refund", refund("nonsense", res_type="x"), secret=FIXTURE_SECRET)
    fake.pushed(push_request("refund", body), delivered=True)
    assert fake.pushes == []
    assert outcome(meituan, fake, A.CONFIRM) is TRANSIENT  # 806: no such order
