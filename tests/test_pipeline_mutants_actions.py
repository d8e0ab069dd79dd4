"""Outbound actions in the pipeline where mutation testing found them unchecked (SPEC §7.3):
what asking refuses and why, the message each action gets on its store's queue and when, a
plugin that fails, the sweep of lost messages, a retry by hand, and a broker that is down.

A worker's bridge on SQLite and on PostgreSQL with the sample platform (whose answer to an
action the test chooses), the in-process broker, its clock in the test's hands and nothing
consuming its queues: each test calls the actors itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from dramatiq import Broker, Message, Middleware

from tests.sample_plugin import NAME, SamplePlugin, native_event
from tests.test_pipeline_mutants_messages import OwnRedis, running_redis
from waimai_bridge.config import load_config
from waimai_bridge.models import Action, ActionOutcome, ActionRequest, ActionResult
from waimai_bridge.pipeline.actions import IN_FLIGHT_TIMEOUT_MS, PERFORM_ACTION, ActionRefused
from waimai_bridge.pipeline.intake import write_pushes
from waimai_bridge.plugin_api import PluginConfig
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import OutboundAction

T0 = 1_716_181_200_000
STORE = "S001"
RETRY_MS = 5_000
RESEND_MS = 60_000


class Performs(Middleware):
    """Records the perform messages the broker took (:attr:`sent`): arguments and delay."""

    def __init__(self) -> None:
        self.sent: list[tuple[tuple[Any, ...], int | None]] = []

    def after_enqueue(self, broker: Broker, message: Message[Any], delay: int | None) -> None:
        if message.actor_name == PERFORM_ACTION:
            self.sent.append((message.args, delay))


class Platform:
    """The sample platform's answers to actions: :attr:`answer` of each request, in turn."""

    def __init__(self) -> None:
        self.requests: list[ActionRequest] = []
        self.answer: Callable[[ActionRequest], ActionResult] = lambda request: ActionResult(
            outcome=ActionOutcome.DONE, code="ok"
        )

    def outbound_action(self, action: ActionRequest, config: PluginConfig) -> ActionResult:
        self.requests.append(action)
        return self.answer(action)


class Actions:
    """A bridge whose clock reads :attr:`now`, whose queues nobody consumes."""

    def __init__(self, bridge: Bridge, platform: Platform, performs: Performs) -> None:
        self.bridge = bridge
        self.platform = platform
        self.performs = performs
        self.now = T0

    def receive(self, order: str, *codes: str, platform: str = NAME) -> None:
        """Events of ``order`` (one of each native code, ``new`` when none is given) written
        to the inbox, not applied, all at one platform time."""
        events = [
            native_event(platform=platform, platform_order_id=order, native_code=code,
                         idempotency_key=f"{order}:{code}", payload={"orderId": order})
            for code in codes or ("new",)
        ]  # fmt: skip
        write_pushes(self.bridge.pipeline, [(events, self.now)])

    def apply(self) -> None:
        """Apply what the inbox holds, as the store's shard worker does."""
        self.bridge.applier.process_shard(self.bridge.pipeline.shard_of(STORE))

    def ask(self, order: str, action: Action = Action.CONFIRM, key: str = "k-1") -> int:
        asked = self.bridge.actions.ask(
            platform=NAME, platform_order_id=order, action=action, reason=None, key=key
        )
        return int(asked.action.id)

    def queued(self) -> list[tuple[tuple[Any, ...], int | None]]:
        """The perform messages sent since the last look: arguments and delay (ms)."""
        sent, self.performs.sent = self.performs.sent, []
        return sent

    def action(self, action_id: int) -> OutboundAction:
        with self.bridge.database.transaction() as session:
            row = session.get(OutboundAction, action_id)
            assert row is not None
            session.expunge(row)
            return row


CONFIG = """
[bridge]
database_url = "{url}"
broker_url = "{broker}"
accept_hold_seconds = 0
action_tries = 2
action_retry_seconds = {retry_s}
resend_after_seconds = {resend_s}

[platforms.sample]
secret = "sample-secret"

[stores.{store}]
sample = {{ shop_id = 1 }}
"""


@contextmanager
def acting(
    database: Database, tmp_path: Path, broker: str = "", manifest: dict[str, Any] | None = None,
    **answers: Callable[..., Any],
) -> Iterator[Actions]:  # fmt: skip
    """A worker's bridge with the sample platform (its ``manifest`` and hooks' ``answers``
    when given), on ``broker``."""
    path = tmp_path / "bridge.toml"
    path.write_text(
        CONFIG.format(url=database.url, broker=broker, retry_s=RETRY_MS / 1000,
                      resend_s=RESEND_MS / 1000, store=STORE),
        "utf-8",
    )  # fmt: skip
    platform = Platform()
    registry = PluginRegistry()
    registry.add(NAME, SamplePlugin(manifest, outbound_action=platform.outbound_action, **answers))
    holder: list[Actions] = []
    bridge = Bridge(load_config(path, registry), registry, clock=lambda: holder[0].now)
    performs = Performs()
    bridge.broker.add_middleware(performs)
    holder.append(Actions(bridge, platform, performs))
    try:
        yield holder[0]
    finally:
        bridge.stop()


@pytest.fixture
def actions(database: Database, tmp_path: Path) -> Iterator[Actions]:
    with acting(database, tmp_path) as made:
        yield made


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    with running_redis(tmp_path) as server:
        yield server


def test_asking_refuses_with_the_status_and_a_message_that_says_why(actions: Actions) -> None:
    with pytest.raises(ActionRefused, match=r"^no sample order 'NOPE' is known$") as unknown:
        actions.ask("NOPE")
    assert unknown.value.status == 404
    with pytest.raises(ActionRefused, match=r"^no platform 'nope' is loaded$") as platform:
        actions.bridge.actions.ask(
            platform="nope", platform_order_id="O1", action=Action.CONFIRM, reason=None, key="k"
        )
    assert platform.value.status == 404
    actions.receive("O1")  # still in the inbox: known, not accepted
    with pytest.raises(ActionRefused) as unsupported:
        actions.ask("O1", Action.AGREE_REFUND)
    assert unsupported.value.status == 422
    assert str(unsupported.value) == (
        "the sample plugin does not support 'agree_refund' (it supports: cancel, confirm)"
    )
    assert unsupported.value.allowed is not None
    assert Action.CONFIRM in unsupported.value.allowed
    assert actions.queued() == []


def test_an_action_asked_is_queued_on_its_stores_queue_and_performed_once(
    actions: Actions,
) -> None:
    actions.receive("O1")
    action_id = actions.ask("O1")
    assert actions.queued() == [((action_id,), None)]
    again = actions.ask("O1", key="k-2")  # a second press: the first action, not queued again
    assert again == action_id
    assert actions.queued() == []
    actions.bridge.actions.perform(action_id)
    [request] = actions.platform.requests
    assert (request.action_id, request.action, request.attempt) == (
        str(action_id), Action.CONFIRM, 1,
    )  # fmt: skip
    assert (actions.action(action_id).status, actions.queued()) == ("done", [])
    actions.bridge.actions.perform(action_id)  # a message run twice calls nothing more
    assert len(actions.platform.requests) == 1


def test_a_transient_failure_is_tried_again_when_due_and_an_early_message_waits_for_it(
    actions: Actions,
) -> None:
    actions.platform.answer = lambda request: ActionResult(
        outcome=ActionOutcome.TRANSIENT, code="busy", message="try later"
    )
    actions.receive("O1")
    action_id = actions.ask("O1")
    actions.queued()
    actions.bridge.actions.perform(action_id)
    assert actions.queued() == [((action_id,), RETRY_MS)]  # the next try, when it is due
    actions.now += 1_000
    actions.bridge.actions.perform(action_id)  # early (a duplicate): comes back when due
    assert len(actions.platform.requests) == 1
    assert actions.queued() == [((action_id,), RETRY_MS - 1_000)]
    actions.now = T0 + RETRY_MS
    actions.bridge.actions.perform(action_id)  # the last of its 2 tries
    assert [request.attempt for request in actions.platform.requests] == [1, 2]
    row = actions.action(action_id)
    assert (row.status, row.result_code, row.result_message) == ("failed", "busy", "try later")
    assert actions.queued() == []


def test_a_plugin_that_fails_on_an_action_fails_it_with_its_error(
    actions: Actions, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: ActionRequest) -> ActionResult:
        raise RuntimeError("x" * 600)

    actions.platform.answer = broken
    actions.receive("O1")
    action_id = actions.ask("O1")
    with caplog.at_level(logging.ERROR, logger="waimai_bridge.pipeline.actions"):
        actions.bridge.actions.perform(action_id)
    row = actions.action(action_id)
    assert (row.status, row.result_code) == ("failed", "PLUGIN_ERROR")
    assert row.result_message == ("RuntimeError: " + "x" * 600)[:500]
    (logged,) = caplog.messages
    assert logged.startswith(f"action {action_id}: the sample plugin failed: RuntimeError at ")
    assert "xxx" not in logged, "the exception's message may quote anything: never logged"
    assert len(actions.platform.requests) == 1  # calling again may not be safe: never


def test_the_sweep_sends_again_an_action_whose_message_was_lost_not_one_in_flight(
    actions: Actions,
) -> None:
    actions.receive("O1")
    action_id = actions.ask("O1")
    actions.queued()  # lost
    sweeper = actions.bridge.sweeper
    actions.now = T0 + RESEND_MS
    assert sweeper.sweep().actions == 0  # not lost long enough yet
    actions.now += 1
    assert sweeper.sweep().actions == 1
    assert actions.queued() == [((action_id,), None)]
    swept: list[int] = []

    def in_flight(request: ActionRequest) -> ActionResult:
        started = actions.now
        actions.now = started + IN_FLIGHT_TIMEOUT_MS  # its worker may still answer
        swept.append(sweeper.sweep().actions)
        actions.now = started + IN_FLIGHT_TIMEOUT_MS + 1  # taken for dead
        swept.append(sweeper.sweep().actions)
        return ActionResult(outcome=ActionOutcome.DONE, code="ok")

    actions.platform.answer = in_flight
    actions.bridge.actions.perform(action_id)
    assert swept == [0, 1]
    assert actions.queued() == [((action_id,), None)]
    assert actions.action(action_id).status == "done"


def test_a_failed_action_retried_by_hand_gets_its_tries_again_and_a_message(
    actions: Actions,
) -> None:
    actions.platform.answer = lambda request: ActionResult(
        outcome=ActionOutcome.REJECTED, code="closed", message="the shop is closed"
    )
    actions.receive("O1")
    action_id = actions.ask("O1")
    actions.bridge.actions.perform(action_id)
    actions.queued()
    assert actions.bridge.actions.retry(action_id + 1) is None  # no such action
    actions.now += 1_000
    row = actions.bridge.actions.retry(action_id)
    assert row is not None
    assert (row.id, row.status, row.attempts, row.attempt_limit) == (action_id, "pending", 1, 3)
    assert row.next_attempt_at_ms == actions.now
    assert actions.queued() == [((action_id,), None)]
    assert actions.bridge.actions.retry(action_id) is None  # pending: nothing to retry
    actions.platform.answer = lambda request: ActionResult(outcome=ActionOutcome.DONE, code="ok")
    actions.bridge.actions.perform(action_id)
    assert actions.action(action_id).status == "done"
    assert [request.attempt for request in actions.platform.requests] == [1, 2]


def test_an_action_asked_or_tried_while_the_broker_is_down_is_kept_for_the_sweep(
    database: Database, tmp_path: Path, own_redis: OwnRedis
) -> None:
    with acting(database, tmp_path, own_redis.url) as actions:
        actions.platform.answer = lambda request: ActionResult(
            outcome=ActionOutcome.TRANSIENT, code="busy"
        )
        actions.receive("O1")
        own_redis.refuse("evalsha", "eval")
        action_id = actions.ask("O1")  # stored; its message is lost
        actions.bridge.actions.perform(action_id)  # tried; its next try's message is lost
        assert actions.action(action_id).status == "pending"
        own_redis.take_all()
        assert actions.queued() == []
        actions.now = T0 + RETRY_MS + RESEND_MS + 1
        assert actions.bridge.sweeper.sweep().actions == 1
        assert actions.queued() == [((action_id,), None)]


def test_an_action_on_an_order_already_applied_is_asked_of_it(actions: Actions) -> None:
    actions.receive("O1")
    actions.apply()
    action_id = actions.ask("O1")
    assert actions.queued() == [((action_id,), None)]
    assert actions.action(action_id).platform_order_id == "O1"
