"""What an action asked is judged on, and what a refusal says (SPEC §7.3): the order's own
events received and not yet applied, whatever else the inbox holds, the answers its plugin
declares, and a refusal's message naming the order's state and what is allowed now.

A worker's bridge on SQLite and on PostgreSQL with the sample platform, bent to read
refund steps and cancellations, and nothing applying the pushes but the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.sample_plugin import MANIFEST, manifest
from tests.test_pipeline_mutants_actions import Actions, acting
from waimai_bridge.models import Action, NativeEvent, PlatformState, StateChange
from waimai_bridge.pipeline.actions import ActionRefused
from waimai_bridge.store.database import Database
from waimai_bridge.store.inbox import InboxStatus
from waimai_bridge.store.tables import InboxEvent

STATES = {
    "new": PlatformState.CREATED,
    "accepted": PlatformState.ACCEPTED,
    "refund": PlatformState.REFUND_REQUESTED,
    "cancelled": PlatformState.CANCELLED,
    "cancel_requested": PlatformState.CANCEL_REQUESTED,
}
CODES = [
    *MANIFEST["native_codes"],
    {"code": "cancelled", "name": "order cancelled", "maps_to": [14]},
    {"code": "cancel_requested", "name": "user asks to cancel", "maps_to": [20]},
    {"code": "garbled", "name": "a step the plugin cannot read", "maps_to": []},
]


def map_state(event: NativeEvent) -> StateChange:
    if event.native_code == "garbled":
        raise ValueError("the plugin cannot read this event")
    return StateChange(state=STATES.get(event.native_code))


def refused(actions: Actions, order: str, action: Action) -> ActionRefused:
    with pytest.raises(ActionRefused) as raised:
        actions.ask(order, action)
    return raised.value


@pytest.fixture
def refunds(database: Database, tmp_path: Path) -> Iterator[Actions]:
    """The sample platform acting on orders, refunds included."""
    acts = ["confirm", "cancel", "meal_ready", "agree_refund"]
    bent = manifest(actions=acts, native_codes=CODES)
    with acting(database, tmp_path, manifest=bent, map_state=map_state) as made:
        yield made


def test_a_refusal_names_the_order_s_state_and_the_actions_allowed_now(refunds: Actions) -> None:
    refunds.receive("O1", "new")
    early = refused(refunds, "O1", Action.MEAL_READY)
    assert early.status == 409
    assert str(early) == (
        "meal_ready needs an accepted order not yet ready; the order is not accepted"
        " (allowed now: confirm, cancel)"
    )
    refunds.receive("O1", "cancelled")
    refunds.apply()
    late = refused(refunds, "O1", Action.CONFIRM)
    assert str(late) == (
        "confirm needs an order not yet accepted; the order is refunded (allowed now: none)"
    )
    assert late.allowed == []


def test_a_plugin_that_supports_no_action_says_so(database: Database, tmp_path: Path) -> None:
    with acting(database, tmp_path, manifest=manifest(actions=[])) as idle:
        idle.receive("O1", "new")
        unsupported = refused(idle, "O1", Action.CONFIRM)
    assert unsupported.status == 422
    assert str(unsupported) == "the sample plugin does not support 'confirm' (it supports: none)"


def test_the_answers_a_plugin_declares_are_what_a_request_allows(
    database: Database, tmp_path: Path
) -> None:
    one_endpoint = manifest(actions=["confirm", "agree_refund"], native_codes=CODES,
                            answers={"agree_refund": [20, 30]})  # fmt: skip
    with acting(database, tmp_path, manifest=one_endpoint, map_state=map_state) as both:
        both.receive("O1", "new", "accepted")
        both.apply()
        both.receive("O1", "cancel_requested")
        confirming = refused(both, "O1", Action.CONFIRM)
        assert both.ask("O1", Action.AGREE_REFUND) > 0
    assert confirming.allowed == [Action.AGREE_REFUND]
    assert str(confirming).endswith("(allowed now: agree_refund)")


def test_an_order_is_judged_on_its_own_unread_events_only(refunds: Actions) -> None:
    refunds.receive("O1", "new", "accepted")
    refunds.receive("O2", "new", "accepted")
    refunds.apply()
    refunds.receive("O2", "refund")  # another order's request
    refunds.receive("O1", "refund", platform="otherpay")  # another platform's order
    asking_o1 = refused(refunds, "O1", Action.AGREE_REFUND)
    assert asking_o1.status == 409
    assert asking_o1.message.startswith("agree_refund needs a pending refund request;")
    refunds.ask("O2", Action.AGREE_REFUND)


def test_an_unread_event_the_plugin_cannot_read_is_passed_over(refunds: Actions) -> None:
    refunds.receive("O1", "new", "accepted")
    refunds.apply()
    refunds.receive("O1", "garbled")
    refunds.receive("O1", "refund")
    assert refunds.ask("O1", Action.AGREE_REFUND) > 0


def test_an_event_the_worker_parked_is_not_judged_on(refunds: Actions) -> None:
    refunds.receive("O1", "new", "accepted")
    refunds.apply()
    refunds.receive("O1", "refund")
    with refunds.bridge.database.transaction() as session:
        session.execute(
            update(InboxEvent)
            .where(InboxEvent.native_code == "refund")
            .values(status=InboxStatus.FAILED)
        )
    assert refused(refunds, "O1", Action.AGREE_REFUND).status == 409
