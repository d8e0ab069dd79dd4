"""Pull compensation and verified actions in the core, on SQLite and PostgreSQL, with the
``pullpay`` test plugin: missed pushes pulled once and confirmed after they are stored,
one puller at a time, orders without their full order read again, unknown action outcomes
settled by reading the order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from tests import testpay
from tests.pullpay import NAME, PullPay
from tests.sample_plugin import PRICE
from tests.test_pipeline import T0, TOKEN
from waimai_bridge.cli.main import cli
from waimai_bridge.config import load_config
from waimai_bridge.models import Action, ActionOutcome, InboundRequest
from waimai_bridge.pipeline.intake import write_pushes
from waimai_bridge.pipeline.pulls import OVERLAP_MS, Puller
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.store import leases, pulls
from waimai_bridge.store.database import Database
from waimai_bridge.store.tables import InboxEvent, OutboundAction, PlatformOrder

SECRET = "pullpay-secret"
CONFIG = """
[bridge]
database_url = "{url}"
api_tokens = ["{token}"]
accept_hold_seconds = 0
pull_interval_seconds = 60
refetch_after_minutes = 30
action_retry_seconds = 0

[platforms.pullpay]
secret = "{secret}"

[stores.S001]
pullpay = {{ shop = "100001" }}

[stores.S002]
pullpay = {{ shop = "100002" }}
"""


class Pulling:
    """A bridge with the pullpay plugin, whose clock reads :attr:`now`."""

    def __init__(self, database: Database, folder: Path) -> None:
        self.platform = PullPay()
        self.config_path = folder / "bridge.toml"
        self.config_path.write_text(
            CONFIG.format(url=database.url, token=TOKEN, secret=SECRET), "utf-8"
        )
        self.registry = PluginRegistry.discover(blocked=())
        self.registry.add(NAME, self.platform)
        self.now = T0
        self.bridge = Bridge(
            load_config(self.config_path, self.registry), self.registry, clock=lambda: self.now
        )

    def body(self, key: str, order: str, code: str, **extra: Any) -> bytes:
        self.now += 1000
        return testpay.push(key, order, code, self.now, **extra)

    def deliver(self, body: bytes) -> None:
        """The platform pushes ``body`` and the bridge takes it into its inbox."""
        self.platform.push(body, delivered=True)
        request = InboundRequest(
            method="POST", url="u", kind=None, query=[], received_at_ms=self.now, body=body,
            headers={testpay.SIGNATURE_HEADER: testpay.sign(body, SECRET)},
        )  # fmt: skip
        parsed = self.bridge.registry.platform(NAME).parse_event(
            request, self.bridge.config.plugin_config(NAME)
        )
        assert parsed is not None
        write_pushes(self.bridge.pipeline, [(parsed.events, self.now)])

    def inbox(self) -> list[str]:
        with self.bridge.database.transaction() as session:
            keys = session.execute(select(InboxEvent.idempotency_key).order_by(InboxEvent.id))
            return list(keys.scalars())

    def apply(self) -> None:
        for store in ("S001", "S002"):
            self.bridge.applier.process_shard(self.bridge.pipeline.shard_of(store))


@pytest.fixture
def pulling(database: Database, tmp_path: Path) -> Iterator[Pulling]:
    made = Pulling(database, tmp_path)
    try:
        yield made
    finally:
        made.bridge.stop()


def test_missed_pushes_are_pulled_once_and_confirmed_after_they_are_stored(
    pulling: Pulling,
) -> None:
    created = pulling.body("m1", "P-1", "order.created", price=PRICE)
    accepted = pulling.body("m2", "P-1", "order.accepted")
    other = pulling.body("m3", "P-2", "order.created", shop="100002")
    pulling.deliver(created)
    for body in (accepted, other):
        pulling.platform.push(body, delivered=False)

    done = pulling.bridge.puller.round()
    assert done is not None
    assert (done.pulled, done.new, done.failed) == (2, 2, [])
    assert sorted(pulling.inbox()) == ["m1", "m2", "m3"]
    assert sorted(pulling.platform.confirmed) == ["m2", "m3"]
    assert not any(pulling.platform.failed.values())

    # the platform pushes the missed messages late after all: nothing new
    pulling.deliver(accepted)
    assert sorted(pulling.inbox()) == ["m1", "m2", "m3"]
    pulling.apply()
    with pulling.bridge.database.transaction() as session:
        states = dict(session.execute(select(PlatformOrder.platform_order_id,
                                             PlatformOrder.state_code)).all())  # fmt: skip
    assert states == {"P-1": 12, "P-2": 10}


def test_a_pull_goes_on_while_the_platform_holds_more_and_starts_where_the_last_began(
    pulling: Pulling,
) -> None:
    for number in range(5):
        pulling.platform.push(pulling.body(f"k{number}", f"O-{number}", "order.created"),
                              delivered=False)  # fmt: skip
    started = pulling.now
    done = pulling.bridge.puller.pull_store(NAME, "S001")
    assert done.pulled == 5
    assert len(pulling.platform.pulls) == 3  # two a pull, while it says "more"
    assert [pull.since_ms for pull in pulling.platform.pulls] == [0, 0, 0]
    pulling.now += 60_000
    pulling.bridge.puller.pull_store(NAME, "S001")
    assert pulling.platform.pulls[-1].since_ms == started - OVERLAP_MS


def test_a_failed_pull_keeps_its_cursor_and_confirms_nothing(pulling: Pulling) -> None:
    pulling.platform.push(pulling.body("k1", "O-1", "order.created"), delivered=False)
    pulling.platform.down = True
    done = pulling.bridge.puller.round()
    assert done is not None
    assert sorted(done.failed) == ["pullpay/S001", "pullpay/S002"]
    assert pulling.inbox() == []
    with pulling.bridge.database.transaction() as session:
        assert pulls.pull_since(session, NAME, "S001") == 0
    pulling.platform.down = False
    pulling.now += 120_000
    assert pulling.bridge.puller.round() is not None
    assert pulling.inbox() == ["k1"]
    assert pulling.platform.confirmed == ["k1"]


def test_one_puller_at_a_time(pulling: Pulling) -> None:
    other = Puller(pulling.bridge.pipeline, interval_s=60, refetch_after_ms=1_800_000)
    assert pulling.bridge.puller.round() is not None
    assert other.round() is None, "the lease is held"
    assert pulling.bridge.puller.round() is not None, "the holder goes on"
    pulling.now += 60_000 * 2 + 60_000 + 1  # the holder died: its lease runs out
    assert other.round() is not None
    assert pulling.bridge.puller.round() is None
    with pulling.bridge.database.transaction() as session:
        leases.release_lease(session, Puller.lease, other.holder)
    assert pulling.bridge.puller.round() is not None


def test_an_order_seen_without_its_full_order_is_read_again_once(pulling: Pulling) -> None:
    full = pulling.body("c1", "F-1", "order.created", price=PRICE)
    pulling.platform.push(full, delivered=True)  # pushed, but the bridge never got it
    pulling.deliver(pulling.body("a1", "F-1", "order.accepted"))
    pulling.apply()
    assert pulling.bridge.puller.refetch().fetched == 0, "the created push may still come"
    pulling.now += 60_001
    done = pulling.bridge.puller.refetch()
    assert (done.fetched, done.new, pulling.platform.fetches) == (2, 1, ["F-1"])  # c1 new
    assert sorted(pulling.inbox()) == ["a1", "c1"]
    pulling.apply()
    with pulling.bridge.database.transaction() as session:
        row = session.execute(select(PlatformOrder).where(
            PlatformOrder.platform_order_id == "F-1")).scalar_one()  # fmt: skip
        assert row.price is not None
    pulling.now += 60_001
    assert pulling.bridge.puller.refetch().fetched == 0
    assert pulling.platform.fetches == ["F-1"], "priced now: not read again"


def test_a_stored_order_that_stopped_moving_is_read_again(pulling: Pulling) -> None:
    pulling.deliver(pulling.body("c1", "S-1", "order.created", price=PRICE))
    pulling.deliver(pulling.body("a1", "S-1", "order.accepted"))
    pulling.apply()
    pulling.bridge.holds.release_holds([[NAME, "S-1", "S001"]])
    pulling.platform.push(pulling.body("d1", "S-1", "order.completed"), delivered=True)
    pulling.now += 29 * 60_000
    pulling.bridge.puller.refetch()
    assert pulling.platform.fetches == []
    pulling.now += 2 * 60_000
    pulling.bridge.puller.refetch()
    assert pulling.platform.fetches == ["S-1"]
    assert "d1" in pulling.inbox()
    pulling.now += 60_000
    pulling.bridge.puller.refetch()
    assert pulling.platform.fetches == ["S-1"], "not again before refetch_after_minutes"


@pytest.mark.parametrize(
    ("took_effect", "status", "attempts"), [(True, "done", 1), (False, "failed", 3)]
)
def test_an_unknown_outcome_is_settled_by_reading_the_order(
    pulling: Pulling, took_effect: bool, status: str, attempts: int
) -> None:
    pulling.deliver(pulling.body("c1", "A-1", "order.created", price=PRICE))
    pulling.apply()
    pulling.platform.outcome = ActionOutcome.UNKNOWN
    pulling.platform.took_effect = took_effect
    actions = pulling.bridge.actions
    asked = actions.ask(platform=NAME, platform_order_id="A-1", action=Action.CONFIRM,
                        reason=None, key="confirm-A-1")  # fmt: skip
    for _ in range(3):
        actions.perform(asked.action.id)
    with pulling.bridge.database.transaction() as session:
        row = session.get(OutboundAction, asked.action.id)
        assert row is not None
        assert (row.status, row.attempts, row.verified) == (status, attempts, True)
    assert len(pulling.platform.calls) == attempts


def test_without_verify_action_an_unknown_outcome_is_retried(
    pulling: Pulling, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = pulling.bridge.registry.platform(NAME)
    capabilities = [c for c in plugin.manifest.capabilities if c != "verify_action"]
    monkeypatch.setattr(plugin, "manifest", plugin.manifest.model_copy(
        update={"capabilities": capabilities}))  # fmt: skip
    pulling.deliver(pulling.body("c1", "A-2", "order.created", price=PRICE))
    pulling.apply()
    pulling.platform.outcome = ActionOutcome.UNKNOWN
    asked = pulling.bridge.actions.ask(platform=NAME, platform_order_id="A-2",
                                       action=Action.CONFIRM, reason=None, key="k-A-2")  # fmt: skip
    pulling.bridge.actions.perform(asked.action.id)
    with pulling.bridge.database.transaction() as session:
        row = session.get(OutboundAction, asked.action.id)
        assert row is not None
        assert (row.status, row.attempts, row.verified) == ("pending", 1, False)


def test_the_pull_command(pulling: Pulling, monkeypatch: pytest.MonkeyPatch) -> None:
    pulling.platform.push(pulling.body("k1", "O-1", "order.created"), delivered=False)
    pulling.platform.push(pulling.body("k2", "O-2", "order.created", shop="100002"),
                          delivered=False)  # fmt: skip
    monkeypatch.setattr("waimai_bridge.cli.context.PluginRegistry.discover",
                        lambda: pulling.registry)  # fmt: skip
    runner = CliRunner()
    path = str(pulling.config_path)
    answer = runner.invoke(cli, ["--config", path, "pull", "--store", "S002"])
    assert answer.exit_code == 0, answer.output
    assert "pulled 1 events from 1 stores, 1 new" in answer.output
    answer = runner.invoke(cli, ["--config", path, "pull", "--since", "2024-05-20T12:00:00+08:00"])
    assert answer.exit_code == 0, answer.output
    assert "pulled 1 events from 2 stores, 1 new" in answer.output
    since = pulling.platform.pulls[-1].since_ms
    assert since == 1_716_177_600_000
    for wrong in (["--since", "yesterday"], ["--platform", "testpay"]):
        answer = runner.invoke(cli, ["--config", path, "pull", *wrong])
        assert answer.exit_code == 2, answer.output
    pulling.platform.down = True
    answer = runner.invoke(cli, ["--config", path, "pull"])
    assert answer.exit_code == 1
    assert "failed: pullpay S001: TransientPlatformError" in answer.output
    with pulling.bridge.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InboxEvent)) == 2


def test_an_order_waiting_to_be_stored_that_stopped_moving_is_read_again(
    pulling: Pulling,
) -> None:
    pulling.deliver(pulling.body("c1", "W-1", "order.created", price=PRICE))
    pulling.apply()
    pulling.platform.push(pulling.body("a1", "W-1", "order.accepted"), delivered=True)
    pulling.now += 31 * 60_000
    pulling.bridge.puller.refetch()
    assert pulling.platform.fetches == ["W-1"]
    assert sorted(pulling.inbox()) == ["a1", "c1"]
