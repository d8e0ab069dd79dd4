"""Which request an answering action answers is the plugin's declaration (SPEC §4.4): the
manifest's ``answers`` over the core's default, checked when the plugin is loaded."""

from __future__ import annotations

from waimai_bridge_meituan import plugin as meituan_plugin

from tests.sample_plugin import NAME, SamplePlugin, manifest
from waimai_bridge.action_rules import (
    DEFAULT_ANSWERS,
    allowed_actions,
    declared_answers,
    refusal,
)
from waimai_bridge.models import Action, OrderState, PlatformState
from waimai_bridge.plugins import PluginRegistry, PluginStatus
from waimai_bridge.statemachine import OrderFold

ANSWERING = {Action.AGREE_CANCEL, Action.REJECT_CANCEL, Action.AGREE_REFUND, Action.REJECT_REFUND}
BOTH = frozenset({PlatformState.CANCEL_REQUESTED, PlatformState.REFUND_REQUESTED})
REFUND_PENDING = OrderFold(
    fulfilment=OrderState.PAID, pending_request=PlatformState.REFUND_REQUESTED
)


def test_without_a_declaration_each_family_answers_its_own_requests() -> None:
    assert allowed_actions(REFUND_PENDING, ANSWERING) == [
        Action.AGREE_REFUND, Action.REJECT_REFUND,
    ]  # fmt: skip
    assert refusal(Action.AGREE_CANCEL, REFUND_PENDING) == (
        "agree_cancel needs a pending cancel request"
    )
    assert declared_answers({}) == DEFAULT_ANSWERS


def test_a_platform_with_one_endpoint_for_both_families_answers_both() -> None:
    registry = PluginRegistry()
    registry.add("meituan", meituan_plugin)
    answers = declared_answers(registry.platform("meituan").manifest.answers)
    assert answers == dict.fromkeys(ANSWERING, BOTH)
    assert allowed_actions(REFUND_PENDING, ANSWERING, answers) == [
        Action.AGREE_CANCEL, Action.REJECT_CANCEL, Action.AGREE_REFUND, Action.REJECT_REFUND,
    ]  # fmt: skip
    assert refusal(Action.AGREE_CANCEL, REFUND_PENDING, answers) is None
    nothing_pending = OrderFold(fulfilment=OrderState.PAID)
    assert refusal(Action.REJECT_REFUND, nothing_pending, answers) == (
        "reject_refund needs a pending cancel or refund request"
    )


def test_a_declaration_for_an_action_the_plugin_lacks_refuses_the_plugin() -> None:
    plugin = SamplePlugin(manifest(answers={"agree_refund": [20, 30]}))
    report = PluginRegistry().add(NAME, plugin)
    assert report.status is PluginStatus.REFUSED
    assert report.problem is not None
    assert report.problem.startswith(
        "plugin 'sample', hook 'plugin_manifest', at $.answers.agree_refund: 'agree_refund' "
        "is not one of the plugin's actions"
    )


def test_a_declaration_for_an_action_that_answers_nothing_breaks_the_schema() -> None:
    plugin = SamplePlugin(manifest(answers={"confirm": [20]}))
    report = PluginRegistry().add(NAME, plugin)
    assert report.status is PluginStatus.REFUSED
    assert report.problem is not None
    assert "answers" in report.problem


A = Action
WINDOWS = {
    None: [A.CONFIRM, A.CANCEL],
    OrderState.PAID: [A.CANCEL, A.MEAL_READY, A.ACCEPT, A.START_PREPARING, A.MARK_READY],
    OrderState.ACCEPTED: [A.CANCEL, A.MEAL_READY, A.START_PREPARING, A.MARK_READY],
    OrderState.PREPARING: [A.CANCEL, A.MEAL_READY, A.MARK_READY],
    OrderState.READY: [A.CANCEL],
    OrderState.DELIVERING: [A.CANCEL],
    OrderState.COMPLETED: [],
}
"""What each fulfilment level allows when nothing is pending: confirm an order not yet
accepted, cancel one not completed, the kitchen steps and meal-ready before it is ready."""


def test_each_action_acting_on_the_order_has_its_window_of_fulfilment() -> None:
    for fulfilment, allowed in WINDOWS.items():
        fold = OrderFold(fulfilment=fulfilment)
        assert allowed_actions(fold, set(Action)) == allowed, fulfilment
        for action in set(Action) - set(allowed) - ANSWERING:
            assert refusal(action, fold) is not None, (fulfilment, action)
    assert refusal(Action.CONFIRM, OrderFold(fulfilment=OrderState.PAID)) == (
        "confirm needs an order not yet accepted"
    )
    assert refusal(Action.MEAL_READY, OrderFold(fulfilment=OrderState.READY)) == (
        "meal_ready needs an accepted order not yet ready"
    )


def test_a_refunded_order_allows_no_action() -> None:
    for fulfilment in WINDOWS:
        refunded = OrderFold(
            fulfilment=fulfilment, refunded=True, pending_request=PlatformState.REFUND_REQUESTED
        )
        assert allowed_actions(refunded, set(Action)) == [], fulfilment
    refunded = OrderFold(fulfilment=OrderState.PAID, refunded=True)
    assert refusal(Action.CANCEL, refunded) == (
        "cancel needs an order neither completed nor refunded"
    )


def test_an_answering_action_a_mapping_leaves_out_answers_its_default_requests() -> None:
    answers = {Action.AGREE_CANCEL: BOTH}
    assert allowed_actions(REFUND_PENDING, ANSWERING, answers) == [
        Action.AGREE_CANCEL, Action.AGREE_REFUND, Action.REJECT_REFUND,
    ]  # fmt: skip
    assert refusal(Action.REJECT_CANCEL, REFUND_PENDING, answers) == (
        "reject_cancel needs a pending cancel request"
    )
