"""The Eleme plugin's recovery hooks against the fake Eleme API: pushes it failed to send
pulled with their push's keys and confirmed, orders read back whole with getOrder, and
actions whose answer was lost settled by reading the order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
from waimai_bridge_eleme import examples
from waimai_bridge_eleme.assumptions import ORDER_NOT_FOUND
from waimai_bridge_eleme.testing import FakeAnswer, FakeEleme, push_body

from waimai_bridge.errors import TransientPlatformError
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import (
    Action,
    ActionOutcome,
    ActionRequest,
    InboundRequest,
    NativeEvent,
    PluginConfig,
)
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.pulled import (
    OrderRef,
    PulledEvents,
    PullReceipt,
    PullRequest,
)
from waimai_bridge.statemachine import LogEntry, fold

FIXTURES = resources.files("waimai_bridge_eleme") / "fixtures"
CONFIG = PluginConfig.model_validate(
    {"platform": "eleme", **json.loads((FIXTURES / "config.json").read_text("utf-8"))}
)
SETTINGS = CONFIG.settings
SHOP, OTHER_SHOP, UNBOUND_SHOP = 160012345, 160012346, 999
ORDER = "3084512398765432101"
T = 1_716_181_200
PUSH_FAIL = "eleme.msgNew.getPushFailMsg"
NON_REACHED = "eleme.message.getNonReachedOMessages"
GET_ORDER = "eleme.order.getOrder"
CONFIRM = "eleme.order.confirmOrderLite"


@pytest.fixture(scope="module")
def eleme() -> Platform:
    return PluginRegistry.discover(blocked=()).platform("eleme")


@pytest.fixture
def fake() -> Iterator[FakeEleme]:
    with FakeEleme.for_fixtures() as running:
        yield running


def against(fake: FakeEleme, **settings: Any) -> PluginConfig:
    return CONFIG.model_copy(
        update={"settings": {**SETTINGS, "api_base": fake.api_base, **settings}}
    )


def push(
    type_: int, message: dict[str, Any], *, shop: int = SHOP, request_id: str | None = None
) -> dict[str, Any]:
    """A push as a fake is told of it (the harness's shape)."""
    body = push_body(
        type_, message, app_id=int(SETTINGS["app_id"]), shop_id=shop,
        secret=str(SETTINGS["app_secret"]), request_id=request_id,
        timestamp_ms=T * 1000 + type_,
    )  # fmt: skip
    return {"method": "POST", "url": "https://bridge.example.com/webhooks/eleme", "kind": None,
            "query": [], "headers": {}, "body": body.decode("utf-8")}  # fmt: skip


def parsed(eleme: Platform, told: dict[str, Any]) -> NativeEvent:
    """The one event ``parse_event`` gives for the push."""
    request = InboundRequest(
        method="POST", url=told["url"], kind=None, query=[], headers={},
        body=told["body"].encode("utf-8"), received_at_ms=T * 1000,
    )  # fmt: skip
    result = eleme.parse_event(request, CONFIG)
    assert result is not None
    [event] = result.events
    return event


def pull(eleme: Platform, fake: FakeEleme, store: str = "S001", **settings: Any) -> PulledEvents:
    return eleme.pull_events(PullRequest(store_id=store, since_ms=0), against(fake, **settings))


def confirm(eleme: Platform, fake: FakeEleme, answer: PulledEvents, store: str = "S001") -> int:
    assert answer.receipt is not None
    receipt = PullReceipt(store_id=store, receipt=answer.receipt)
    return eleme.confirm_pull(receipt, against(fake)).count


def keys(answer: PulledEvents) -> set[str]:
    return {event.idempotency_key for event in answer.events}


def a_lifecycle() -> list[dict[str, Any]]:
    """A new order, its acceptance, a rider and a cancel request: two core, two others."""
    return [
        push(10, examples.new_order(ORDER, SHOP)),
        push(12, examples.status(ORDER, SHOP, "valid", T + 60)),
        push(53, examples.delivery(ORDER, SHOP, "tobeFetched", (T + 120) * 1000)),
        push(20, examples.refund(ORDER, SHOP, "applied", T + 180)),
    ]


# --------------------------------------------------------------------------- pull


def test_a_pulled_message_is_the_event_its_late_push_gives(
    eleme: Platform, fake: FakeEleme
) -> None:
    told = a_lifecycle()
    for one in told:
        fake.pushed(one, delivered=False)

    answer = pull(eleme, fake)

    pulled = {event.idempotency_key: event for event in answer.events}
    for one in told:  # the push arriving late after all: the same event, the same key
        pushed = parsed(eleme, one)
        assert pulled[pushed.idempotency_key] == pushed
    assert len(answer.events) == len(told)
    assert answer.more is False


def test_only_the_confirmed_messages_stop_coming(eleme: Platform, fake: FakeEleme) -> None:
    told = a_lifecycle()
    for one in told:
        fake.pushed(one, delivered=False)
    core = {parsed(eleme, one).idempotency_key for one in told[:2]}

    first = pull(eleme, fake)
    unconfirmed = pull(eleme, fake)  # the core messages stay on offer until confirmed
    assert keys(unconfirmed) == core
    assert len(json.loads(str(first.receipt))) == 2

    assert confirm(eleme, fake, unconfirmed) == 2
    assert pull(eleme, fake).events == []
    assert fake.offered() == 2  # the others stay listed, each handed once to each token


def test_each_store_pulls_only_its_own_shops_messages(eleme: Platform, fake: FakeEleme) -> None:
    mine = push(12, examples.status(ORDER, SHOP, "valid", T))
    theirs = push(12, examples.status("4", OTHER_SHOP, "valid", T), shop=OTHER_SHOP)
    their_rider = push(53, examples.delivery("4", OTHER_SHOP, "tobeFetched", T * 1000),
                       shop=OTHER_SHOP)  # fmt: skip
    nobodys = push(12, examples.status("5", UNBOUND_SHOP, "valid", T), shop=UNBOUND_SHOP)
    for one in (mine, theirs, their_rider, nobodys):
        fake.pushed(one, delivered=False)

    first = pull(eleme, fake, "S001")
    confirm(eleme, fake, first, "S001")
    second = pull(eleme, fake, "S002")

    assert keys(first) == {parsed(eleme, mine).idempotency_key}
    assert keys(second) == {parsed(eleme, theirs).idempotency_key,
                            parsed(eleme, their_rider).idempotency_key}  # fmt: skip
    assert {event.store_id for event in second.events} == {"S002"}


def test_the_msgnew_methods_take_an_empty_token_and_the_old_one_the_stores(
    eleme: Platform, fake: FakeEleme
) -> None:
    fake.pushed(push(12, examples.status(ORDER, SHOP, "valid", T)), delivered=False)
    confirm(eleme, fake, pull(eleme, fake))

    tokens = {call.action: call.token for call in fake.calls}
    assert tokens == {
        PUSH_FAIL: "",
        "eleme.msgNew.confirmPullMsg": "",
        NON_REACHED: CONFIG.stores["S001"]["token"],
    }
    assert all(call.signature_ok and call.answer and call.answer["error"] is None
               for call in fake.calls)  # fmt: skip


def test_a_store_without_a_token_still_pulls_its_core_messages(
    eleme: Platform, fake: FakeEleme
) -> None:
    for one in a_lifecycle():
        fake.pushed(one, delivered=False)
    config = against(fake)
    config = config.model_copy(update={"stores": {"S001": {"shop_id": SHOP}}})

    answer = eleme.pull_events(PullRequest(store_id="S001", since_ms=0), config)

    assert {event.native_code for event in answer.events} == {"10", "12"}
    assert NON_REACHED not in {call.action for call in fake.calls}


def test_an_unreadable_message_is_left_out_and_unconfirmed(
    eleme: Platform, fake: FakeEleme
) -> None:
    good = json.loads(push(12, examples.status(ORDER, SHOP, "valid", T))["body"])
    bad = {**good, "type": 999, "requestId": "1", "msgId": "66"}
    no_id = {**good, "requestId": "2"}
    fake.script(PUSH_FAIL, FakeAnswer.ok([bad, no_id, {**good, "msgId": "77"}, "nonsense"]))

    answer = pull(eleme, fake)

    assert keys(answer) == {good["requestId"]}
    assert json.loads(str(answer.receipt)) == ["77"]


def test_a_full_receipt_says_more_and_the_rest_comes_after_the_confirm(
    eleme: Platform, fake: FakeEleme
) -> None:
    for number in range(120):
        fake.pushed(push(12, examples.status(str(number), SHOP, "valid", T)), delivered=False)

    first = pull(eleme, fake)
    assert first.more is True
    assert len(json.loads(str(first.receipt))) == len(first.events) < 120
    confirm(eleme, fake, first)
    second = pull(eleme, fake)

    assert second.more is False
    assert len(first.events) + len(second.events) == 120
    assert not keys(first) & keys(second)


@pytest.mark.parametrize(
    ("method", "answer"),
    [
        (PUSH_FAIL, FakeAnswer.error("SERVER_ERROR", "服务器错误")),
        (PUSH_FAIL, FakeAnswer.ok({"not": "a list"})),
        (NON_REACHED, FakeAnswer.error("UNAUTHORIZED", "token 无效")),
        (NON_REACHED, FakeAnswer.http(502)),
    ],
)
def test_a_list_that_cannot_be_read_fails_the_pull_and_confirms_nothing(
    eleme: Platform, fake: FakeEleme, method: str, answer: FakeAnswer
) -> None:
    fake.pushed(push(12, examples.status(ORDER, SHOP, "valid", T)), delivered=False)
    fake.script(method, answer)

    with pytest.raises(TransientPlatformError):
        pull(eleme, fake)

    assert len(pull(eleme, fake).events) == 1  # still on offer


def test_a_push_delivered_late_is_no_longer_offered(eleme: Platform, fake: FakeEleme) -> None:
    for one in a_lifecycle():
        fake.pushed(one, delivered=False)
        fake.pushed(one, delivered=True)

    assert pull(eleme, fake).events == []


def test_a_receipt_it_did_not_make_is_not_confirmed(eleme: Platform, fake: FakeEleme) -> None:
    for receipt in ("not json", "[]", '{"msgIds": [1]}', "[true]", json.dumps(["x" * 65])):
        with pytest.raises(TransientPlatformError, match="receipt"):
            eleme.confirm_pull(PullReceipt(store_id="S001", receipt=receipt), against(fake))
    assert fake.calls == []


def test_a_refused_confirmation_raises_and_the_messages_come_again(
    eleme: Platform, fake: FakeEleme
) -> None:
    fake.pushed(push(12, examples.status(ORDER, SHOP, "valid", T)), delivered=False)
    answer = pull(eleme, fake)
    fake.script("eleme.msgNew.confirmPullMsg", FakeAnswer.error("SERVER_ERROR", "服务器错误"))

    with pytest.raises(TransientPlatformError):
        confirm(eleme, fake, answer)

    assert keys(pull(eleme, fake)) == keys(answer)


# --------------------------------------------------------------------------- outbound: unknown

CONFIRM_ACTION = ActionRequest(
    action_id="A1", action=Action.CONFIRM, platform_order_id=ORDER, store_id="S001", attempt=1
)


def test_a_read_time_out_after_sending_is_unknown_and_the_order_shows_it_done(
    eleme: Platform, fake: FakeEleme
) -> None:
    fake.pushed(push(10, examples.new_order(ORDER, SHOP)), delivered=True)
    fake.script(CONFIRM, FakeAnswer.slow(2.0))
    config = against(fake, timeout_seconds=0.3)

    result = eleme.outbound_action(CONFIRM_ACTION, config)
    verified = eleme.verify_action(CONFIRM_ACTION, config)

    assert (result.outcome, result.code) == (ActionOutcome.UNKNOWN, "TIMEOUT")
    assert (verified.outcome, verified.code) == (ActionOutcome.DONE, "valid")
    assert len(fake.calls_to(CONFIRM)) == 1


def test_a_connect_failure_is_transient_nothing_was_sent(eleme: Platform) -> None:
    with FakeEleme.for_fixtures() as stopped:
        config = against(stopped)
    result = eleme.outbound_action(CONFIRM_ACTION, config)
    assert (result.outcome, result.code) == (ActionOutcome.TRANSIENT, "NETWORK")


# --------------------------------------------------------------------------- verify


@pytest.mark.parametrize(
    ("told", "action", "outcome", "code"),
    [
        ([], Action.CONFIRM, ActionOutcome.REJECTED, ORDER_NOT_FOUND),
        ([10], Action.CONFIRM, ActionOutcome.TRANSIENT, "unprocessed"),
        ([10], Action.CANCEL, ActionOutcome.TRANSIENT, "unprocessed"),
        ([10, 12], Action.CONFIRM, ActionOutcome.DONE, "valid"),
        ([10, 14], Action.CONFIRM, ActionOutcome.REJECTED, "invalid"),
        ([10, 14], Action.CANCEL, ActionOutcome.DONE, "invalid"),
        ([10, 12, 18], Action.CANCEL, ActionOutcome.REJECTED, "settled"),
        ([10, 12], Action.AGREE_CANCEL, ActionOutcome.REJECTED, "noRefund"),
        ([10, 12, 20], Action.AGREE_CANCEL, ActionOutcome.TRANSIENT, "applied"),
        ([10, 12, 20, 23], Action.AGREE_CANCEL, ActionOutcome.DONE, "successful"),
        ([10, 12, 20, 23], Action.REJECT_CANCEL, ActionOutcome.REJECTED, "successful"),
        ([10, 18, 30, 32], Action.REJECT_REFUND, ActionOutcome.DONE, "rejected"),
        ([10, 18, 30, 31], Action.REJECT_REFUND, ActionOutcome.REJECTED, "noRefund"),
    ],
)
def test_verify_reads_where_the_order_stands(
    eleme: Platform, fake: FakeEleme, told: list[int], action: Action,
    outcome: ActionOutcome, code: str,
) -> None:  # fmt: skip
    messages = {
        10: examples.new_order(ORDER, SHOP),
        **{t: examples.status(ORDER, SHOP, s, T + t)
           for t, s in ((12, "valid"), (14, "invalid"), (18, "settled"))},
        **{t: examples.refund(ORDER, SHOP, s, T + t)
           for t, s in ((20, "applied"), (23, "successful"), (30, "applied"),
                        (31, "noRefund"), (32, "rejected"))},
    }  # fmt: skip
    for type_ in told:
        fake.pushed(push(type_, messages[type_]), delivered=True)
    request = CONFIRM_ACTION.model_copy(update={"action": action})

    result = eleme.verify_action(request, against(fake))

    assert (result.outcome, result.code) == (outcome, code)
    assert result.message
    assert [call.action for call in fake.calls] == [GET_ORDER]


def test_verify_after_the_action_on_the_fake_says_done(eleme: Platform, fake: FakeEleme) -> None:
    for action in (Action.CONFIRM, Action.AGREE_REFUND):
        request = CONFIRM_ACTION.model_copy(update={"action": action})
        assert eleme.verify_action(request, against(fake)).outcome is ActionOutcome.REJECTED
        assert eleme.outbound_action(request, against(fake)).outcome is ActionOutcome.DONE
        assert eleme.verify_action(request, against(fake)).outcome is ActionOutcome.DONE


@pytest.mark.parametrize(
    "answer", [FakeAnswer.error("SERVER_ERROR", "服务器错误"), FakeAnswer.drop(),
               FakeAnswer.ok({"status": "somethingNew", "refundStatus": "noRefund"})]
)  # fmt: skip
def test_verify_that_cannot_read_the_order_is_unknown(
    eleme: Platform, fake: FakeEleme, answer: FakeAnswer
) -> None:
    fake.script(GET_ORDER, answer)
    result = eleme.verify_action(CONFIRM_ACTION, against(fake))
    assert result.outcome is ActionOutcome.UNKNOWN
    assert str(SETTINGS["app_secret"]) not in str(result.message)
    assert str(CONFIG.stores["S001"]["token"]) not in str(result.message)


# --------------------------------------------------------------------------- fetch

REF = OrderRef(store_id="S001", platform_order_id=ORDER)


def test_a_fetched_order_is_its_full_order_and_its_state(eleme: Platform, fake: FakeEleme) -> None:
    created = push(10, examples.new_order(ORDER, SHOP))
    fake.pushed(created, delivered=False)  # the new-order push was lost
    fake.pushed(push(12, examples.status(ORDER, SHOP, "valid", T + 60)), delivered=True)
    config = against(fake)

    fetched = eleme.fetch_order(REF, config)

    assert fetched is not None
    order, state = fetched.events
    pushed = parsed(eleme, created)
    assert (order.native_code, order.idempotency_key) == ("10", f"fetch:10:{ORDER}")
    assert order.payload == {**pushed.payload, "status": "valid", "refundStatus": "noRefund"}
    assert eleme.price_breakdown(order, config) == eleme.price_breakdown(pushed, config)
    assert (state.native_code, state.idempotency_key) == ("12", f"fetch:12:{ORDER}")
    assert eleme.map_state(state).state == 12
    again = eleme.fetch_order(REF, config)
    assert again is not None
    assert [e.idempotency_key for e in again.events] == [e.idempotency_key for e in fetched.events]


@pytest.mark.parametrize(
    ("status", "codes"),
    [("unprocessed", ["10"]), ("valid", ["10", "12"]), ("refunding", ["10", "12"]),
     ("settled", ["10", "18"]), ("invalid", ["10", "15"])],
)  # fmt: skip
def test_a_fetched_state_is_a_baseline_state_never_a_request(
    eleme: Platform, fake: FakeEleme, status: str, codes: list[str]
) -> None:
    fake.put_order({**examples.new_order(ORDER, SHOP), "status": status})
    fetched = eleme.fetch_order(REF, against(fake))
    assert fetched is not None
    assert [event.native_code for event in fetched.events] == codes


def test_folding_fetched_events_beside_their_pushed_twins_changes_nothing(
    eleme: Platform, fake: FakeEleme
) -> None:
    lifecycle = [push(10, examples.new_order(ORDER, SHOP)),
                 push(12, examples.status(ORDER, SHOP, "valid", T + 60)),
                 push(15, examples.status(ORDER, SHOP, "invalid", T + 120))]  # fmt: skip
    for one in lifecycle:
        fake.pushed(one, delivered=True)
    pushed = [eleme.event(parsed(eleme, one)) for one in lifecycle]
    fetched = eleme.fetch_order(REF, against(fake))
    assert fetched is not None
    assert [event.native_code for event in fetched.events] == ["10", "15"]

    alone = fold([LogEntry.of(e, n) for n, e in enumerate(pushed)], user_paid_fen=3000)
    both = fold(
        [LogEntry.of(e, n) for n, e in enumerate([*pushed, *map(eleme.event, fetched.events)])],
        user_paid_fen=3000,
    )

    assert (both.order_state, both.refunded_amount_fen) == (alone.order_state, 3000)
    assert both.refunded_amount_fen == alone.refunded_amount_fen


def test_an_order_eleme_does_not_know_is_none(eleme: Platform, fake: FakeEleme) -> None:
    theirs = examples.new_order("4", OTHER_SHOP)
    fake.put_order(theirs)
    config = against(fake)

    assert eleme.fetch_order(REF, config) is None
    assert eleme.fetch_order(REF.model_copy(update={"platform_order_id": "4"}), config) is None
    calls = len(fake.calls)
    shop = REF.model_copy(update={"platform_order_id": f"shop:{SHOP}"})
    assert eleme.fetch_order(shop, config) is None  # a shop's messages name no order
    assert len(fake.calls) == calls


@pytest.mark.parametrize(
    "answer",
    [FakeAnswer.error("SERVER_ERROR", "服务器错误"), FakeAnswer.error("UNAUTHORIZED", "无效"),
     FakeAnswer.ok("an order"), FakeAnswer.ok({"id": ORDER, "status": "whatever"})],
)  # fmt: skip
def test_an_order_that_cannot_be_read_raises_transient(
    eleme: Platform, fake: FakeEleme, answer: FakeAnswer
) -> None:
    fake.script(GET_ORDER, answer)
    with pytest.raises(TransientPlatformError):
        eleme.fetch_order(REF, against(fake))
