"""The plugins' reading of "already in that state" answers (SPEC §4.4): a repeated action
the platform already did is ``done``, any other state answer stays a rejection; and the fake
platforms answer a repeated call the way the plugins assume the platforms do."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from waimai_bridge_eleme import assumptions as eleme_facts
from waimai_bridge_eleme.api import classify as eleme_classify
from waimai_bridge_eleme.testing import FIXTURE_SETTINGS as ELEME_SETTINGS
from waimai_bridge_eleme.testing import FIXTURE_STORES as ELEME_STORES
from waimai_bridge_eleme.testing import FakeAnswer as ElemeAnswer
from waimai_bridge_eleme.testing import FakeEleme
from waimai_bridge_meituan import assumptions as meituan_facts
from waimai_bridge_meituan.api import classify as meituan_classify
from waimai_bridge_meituan.testing import FakeAnswer as MeituanAnswer
from waimai_bridge_meituan.testing import FakeMeituan, fixture_config

from waimai_bridge.bounds import MAX_ID_LENGTH, MAX_TEXT_LENGTH
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import Action, ActionOutcome, ActionRequest, ActionResult, PluginConfig
from waimai_bridge.plugins import PluginRegistry

ORDER = "3084512398765432101"


@pytest.fixture(scope="module")
def plugins() -> PluginRegistry:
    return PluginRegistry.discover(blocked=(), reference=True)


@pytest.fixture
def eleme_fake() -> Iterator[FakeEleme]:
    with FakeEleme.for_fixtures() as running:
        yield running


@pytest.fixture
def meituan_fake() -> Iterator[FakeMeituan]:
    with FakeMeituan() as running:
        yield running


def request(action: Action, order: str = ORDER) -> ActionRequest:
    reason = "sold_out" if action is Action.CANCEL else None
    return ActionRequest(
        action_id="A1", action=action, platform_order_id=order, store_id="S001", reason=reason,
        attempt=1,
    )  # fmt: skip


def eleme_config(fake: FakeEleme) -> PluginConfig:
    return PluginConfig(
        platform="eleme", public_base_url="https://bridge.example.com",
        settings={**ELEME_SETTINGS, "api_base": fake.api_base},
        stores={store: dict(binding) for store, binding in ELEME_STORES.items()},
    )  # fmt: skip


def outcomes(platform: Platform, config: PluginConfig, *actions: Action) -> list[str]:
    """The outcome of each action in turn, on the same order."""
    return [platform.outbound_action(request(action), config).outcome.value for action in actions]


A = Action
REPEATS = [
    # (actions in turn, the outcome of each): a repeat is done, a contradiction rejected
    ((A.CONFIRM, A.CONFIRM), ["done", "done"]),
    ((A.CANCEL, A.CANCEL), ["done", "done"]),
    ((A.CONFIRM, A.CANCEL, A.CONFIRM), ["done", "done", "rejected"]),
    ((A.AGREE_REFUND, A.AGREE_REFUND, A.AGREE_CANCEL), ["done", "done", "done"]),
    ((A.AGREE_REFUND, A.REJECT_REFUND), ["done", "rejected"]),
    ((A.REJECT_CANCEL, A.REJECT_REFUND, A.AGREE_CANCEL), ["done", "done", "rejected"]),
]


@pytest.mark.parametrize(("actions", "expected"), REPEATS)
def test_eleme_repeats(
    plugins: PluginRegistry, eleme_fake: FakeEleme, actions: tuple[Action, ...],
    expected: list[str],
) -> None:  # fmt: skip
    config = eleme_config(eleme_fake)
    assert outcomes(plugins.platform("eleme"), config, *actions) == expected
    assert len(eleme_fake.calls) == len(actions)


@pytest.mark.parametrize(("actions", "expected"), REPEATS)
def test_meituan_repeats(
    plugins: PluginRegistry, meituan_fake: FakeMeituan, actions: tuple[Action, ...],
    expected: list[str],
) -> None:  # fmt: skip
    config = fixture_config(api_base=meituan_fake.api_base)
    assert outcomes(plugins.platform("meituan"), config, *actions) == expected
    assert len(meituan_fake.calls) == len(actions)


def test_eleme_fake_answers_a_repeat_with_the_assumed_error(
    plugins: PluginRegistry, eleme_fake: FakeEleme
) -> None:
    eleme = plugins.platform("eleme")
    config = eleme_config(eleme_fake)
    eleme.outbound_action(request(Action.AGREE_REFUND), config)
    repeated = eleme.outbound_action(request(Action.AGREE_REFUND), config)
    assert (repeated.code, repeated.message) == eleme_facts.REQUEST_ALREADY_AGREED
    eleme_fake.open_request(ORDER)  # a new application: it can be answered again
    assert eleme.outbound_action(request(Action.REJECT_REFUND), config).code is None
    other = eleme.outbound_action(request(Action.CONFIRM, "another"), config)
    assert (other.outcome, other.code) == (ActionOutcome.DONE, None)
    eleme_fake.reset()
    assert eleme.outbound_action(request(Action.AGREE_REFUND), config).code is None


def test_meituan_fake_answers_a_repeat_with_the_assumed_error(
    plugins: PluginRegistry, meituan_fake: FakeMeituan
) -> None:
    meituan = plugins.platform("meituan")
    config = fixture_config(api_base=meituan_fake.api_base)
    meituan.outbound_action(request(Action.CONFIRM), config)
    repeated = meituan.outbound_action(request(Action.CONFIRM), config)
    assert (repeated.code, repeated.message) == meituan_facts.ALREADY_CONFIRMED
    meituan.outbound_action(request(Action.REJECT_REFUND), config)
    meituan_fake.open_request(ORDER)
    assert meituan.outbound_action(request(Action.AGREE_REFUND), config).code is None
    meituan_fake.reset()
    assert meituan.outbound_action(request(Action.CONFIRM), config).code is None


@pytest.mark.parametrize(
    ("platform", "code", "message"),
    [
        ("eleme", "BIZ_ORDER_STATUS_ERROR", "订单状态不正确"),
        ("eleme", "BIZ_OTHER", eleme_facts.ALREADY_CONFIRMED[1]),
        ("meituan", "808", "操作失败"),
        ("meituan", "1001", meituan_facts.ALREADY_CONFIRMED[1]),
    ],
)
def test_a_state_answer_without_the_assumed_words_or_code_stays_rejected(
    plugins: PluginRegistry, eleme_fake: FakeEleme, meituan_fake: FakeMeituan, platform: str,
    code: str, message: str,
) -> None:  # fmt: skip
    if platform == "eleme":
        eleme_fake.script("eleme.order.confirmOrderLite", ElemeAnswer.error(code, message))
        config = eleme_config(eleme_fake)
    else:
        meituan_fake.script("order/confirm", MeituanAnswer.error(int(code), message))
        config = fixture_config(api_base=meituan_fake.api_base)
    result = plugins.platform(platform).outbound_action(request(Action.CONFIRM), config)
    assert (result.outcome, result.code, result.message) == (
        ActionOutcome.REJECTED, code, message,
    )  # fmt: skip


def test_a_platform_code_or_message_longer_than_the_contract_holds_is_shortened() -> None:
    code, message = "C" * 300, "m" * 10_000
    eleme = eleme_classify(httpx.Response(200, json={"error": {"code": code, "message": message}}))
    meituan = meituan_classify(200, json.dumps({"error": {"code": code, "msg": message}}))
    for result in (eleme, meituan):
        assert result.outcome is ActionOutcome.REJECTED
        assert result.code == code[:MAX_ID_LENGTH]
        assert result.message == message[:MAX_TEXT_LENGTH]
        assert ActionResult.model_validate(result.model_dump()) == result  # within the contract
