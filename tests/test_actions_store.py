"""Asking outbound actions against the database, on SQLite and PostgreSQL (SPEC §4.4,
§7.3): one action per kind on an order or request whatever the idempotency key, also when
asked at the same moment; an order still unread in the inbox can be acted on; actions asked
before their order was stored get its id."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from waimai_bridge_eleme import examples

from tests.processes import wait_until
from tests.test_store import lock_waits
from waimai_bridge.config import load_config
from waimai_bridge.models import Action, NativeEvent
from waimai_bridge.pipeline.actions import ActionRefused
from waimai_bridge.pipeline.intake import write_pushes
from waimai_bridge.plugins import PluginRegistry
from waimai_bridge.runtime import Bridge
from waimai_bridge.store import actions
from waimai_bridge.store.database import Database
from waimai_bridge.store.order_log import Locked, lock_orders
from waimai_bridge.store.tables import Order, OutboundAction, PlatformOrder

SHOP = 160012345
T0 = 1_716_181_200_000


@pytest.fixture
def bridge(database: Database, tmp_path: Path) -> Iterator[Bridge]:
    """A bridge on ``database`` whose queue nobody works: inbox events stay unread."""
    path = tmp_path / "bridge.toml"
    path.write_text(
        f"""
[bridge]
database_url = "{database.url}"
accept_hold_seconds = 0

[platforms.eleme]
app_key = "key"
app_secret = "secret"
app_id = 1

[stores.S001]
eleme = {{ shop_id = {SHOP}, token = "token" }}
""",
        "utf-8",
    )
    registry = PluginRegistry.discover(blocked=())
    running = Bridge(load_config(path, registry), registry)
    yield running
    running.stop()


def created(order: str) -> NativeEvent:
    return NativeEvent(
        platform="eleme", store_id="S001", platform_order_id=order, native_code="10",
        idempotency_key=f"push-{order}", platform_time_ms=T0,
        payload=examples.new_order(order, SHOP),
    )  # fmt: skip


def ask(bridge: Bridge, order: str, action: Action, key: str) -> actions.Asked:
    return bridge.actions.ask(
        platform="eleme", platform_order_id=order, action=action, reason=None, key=key
    )


def test_an_order_unread_in_the_inbox_is_confirmed_once_however_often_asked(
    bridge: Bridge,
) -> None:
    write_pushes(bridge.pipeline, [([created("N1")], T0)])
    start = threading.Barrier(6, timeout=30)
    asked: list[actions.Asked] = []

    def press(key: str) -> None:
        start.wait()
        asked.append(ask(bridge, "N1", Action.CONFIRM, key))

    threads = [threading.Thread(target=press, args=(f"press-{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(asked) == 6
    assert len({one.action.id for one in asked}) == 1
    assert sum(one.created for one in asked) == 1
    with bridge.database.transaction() as session:
        assert session.scalars(select(OutboundAction.action)).all() == ["confirm"]
        platform_order = session.scalars(select(PlatformOrder)).one()
        assert (platform_order.store_id, platform_order.state_code) == ("S001", None)
    # the worker applies the push to the row the action created
    bridge.applier.process_shard(bridge.pipeline.shard_of("S001"))
    with bridge.database.transaction() as session:
        platform_order = session.scalars(select(PlatformOrder)).one()
        assert (platform_order.store_id, platform_order.state_code) == ("S001", 10)


def test_an_order_neither_stored_nor_in_the_inbox_is_unknown(bridge: Bridge) -> None:
    write_pushes(bridge.pipeline, [([created("N2")], T0)])
    with pytest.raises(ActionRefused) as refused:
        ask(bridge, "N3", Action.CONFIRM, "k")
    assert refused.value.status == 404
    with bridge.database.transaction() as session:
        assert session.scalars(select(PlatformOrder)).all() == []


def _platform_order(session: Session, order: str, platform: str = "eleme") -> Locked:
    """A new platform order, locked as the actions' ask locks it."""
    session.add(
        PlatformOrder(
            platform=platform, platform_order_id=order, store_id="S001", state_code=30,
            order_state=None, price=None, order_id=None,
            hold_started_at_ms=None, discarded=False, created_at_ms=0, updated_at_ms=0,
        )
    )  # fmt: skip
    session.flush()
    return lock_orders(session, [(platform, order)])[platform, order]


def test_one_action_per_kind_and_request(database: Database) -> None:
    with database.transaction() as session:
        platform_order = _platform_order(session, "R1")

        def agree(key: str, request: str | None) -> actions.Asked:
            return actions.ask(
                session, key=key, action=Action.AGREE_REFUND, platform_order=platform_order,
                request_key=request, reason=None, attempt_limit=3, now_ms=1_000,
            )  # fmt: skip

        first = agree("a", "request-1")
        assert first.created
        repeated = agree("b", "request-1")
        assert (repeated.action.id, repeated.created) == (first.action.id, False)
        second = agree("c", "request-2")
        assert second.created
        first.action.status = actions.ActionStatus.DONE
        second.action.status = actions.ActionStatus.FAILED
        session.flush()
        assert agree("d", "request-1").action.id == first.action.id
        retried = agree("e", "request-2")
        assert retried.created
        assert retried.action.id != second.action.id
        # the failed one retried by hand as well: the newest of the two is what an ask repeats
        assert actions.retry(session, second.action.id, tries=1, now_ms=2_000) is not None
        session.flush()
        assert agree("f", "request-2").action.id == retried.action.id
        rejected = actions.ask(
            session, key="g", action=Action.REJECT_REFUND, platform_order=platform_order,
            request_key="request-1", reason=None, attempt_limit=3, now_ms=1_000,
        )  # fmt: skip
        assert rejected.created, "another kind of action on the same request"
        namesake = _platform_order(session, "R1", platform="otherpay")
        elsewhere = actions.ask(
            session, key="h", action=Action.AGREE_REFUND, platform_order=namesake,
            request_key="request-1", reason=None, attempt_limit=3, now_ms=1_000,
        )  # fmt: skip
        assert elsewhere.created, "another platform's order of the same id"
        with pytest.raises(actions.KeyConflict):
            actions.ask(
                session, key="a", action=Action.REJECT_REFUND, platform_order=platform_order,
                request_key="request-1", reason=None, attempt_limit=3, now_ms=1_000,
            )  # fmt: skip


def test_actions_asked_before_the_order_was_stored_get_its_id(database: Database) -> None:
    with database.transaction() as session:
        keys = {}
        for order in ("S1", "S2"):
            platform_order = _platform_order(session, order)
            keys[order] = actions.ask(
                session, key=f"k-{order}", action=Action.CONFIRM, platform_order=platform_order,
                request_key=None, reason=None, attempt_limit=3, now_ms=1_000,
            ).action.id  # fmt: skip
        stored = Order(
            platform="eleme", platform_order_id="S1", store_id="S001", state="paid",
            rider_state=None, refunded_amount_fen=0, price=None, version=1,
            created_at_ms=2_000, updated_at_ms=2_000,
        )  # fmt: skip
        session.add(stored)
        session.flush()
        order_id = stored.id
    with database.transaction() as session:
        actions.attach_order_ids(session, [("eleme", "S1", order_id)])
    with database.transaction() as session:
        found = {row.id: row.order_id for row in session.scalars(select(OutboundAction))}
    assert found == {keys["S1"]: order_id, keys["S2"]: None}
    with database.transaction() as session:  # the order stored: an action asked now has it
        session.execute(
            update(PlatformOrder).where(PlatformOrder.platform_order_id == "S1")
            .values(order_id=order_id)
        )  # fmt: skip
        platform_order = lock_orders(session, [("eleme", "S1")])["eleme", "S1"]
        cancel = actions.ask(
            session, key="k-cancel", action=Action.CANCEL, platform_order=platform_order,
            request_key=None, reason=None, attempt_limit=3, now_ms=3_000,
        )  # fmt: skip
        assert (cancel.created, cancel.action.order_id) == (True, order_id)


def test_one_key_asked_at_once_for_two_orders_is_the_first_s_alone(
    postgres_database: Database,
) -> None:
    database = postgres_database  # SQLite's writer lock lets no two asks overlap
    with database.transaction() as session:
        for order in ("K1", "K2"):
            _platform_order(session, order)
    refused: list[Exception] = []

    def ask_of(session: Session, order: str) -> actions.Asked:
        platform_order = lock_orders(session, [("eleme", order)])["eleme", order]
        return actions.ask(
            session, key="k", action=Action.CONFIRM, platform_order=platform_order,
            request_key=None, reason=None, attempt_limit=3, now_ms=1_000,
        )  # fmt: skip

    def other_press() -> None:
        try:
            with database.transaction() as session:
                ask_of(session, "K2")
        except actions.KeyConflict as exc:
            refused.append(exc)

    other = threading.Thread(target=other_press)
    with lock_waits(database) as waits, database.transaction() as session:
        first = ask_of(session, "K1")
        session.flush()
        first_id = first.action.id
        other.start()
        wait_until(waits, 30, "the other ask waiting on the key")
    other.join(timeout=30)
    assert not other.is_alive()
    assert [str(exc) for exc in refused] == [
        f"idempotency key 'k' is already action {first_id} (confirm of eleme order K1)"
    ]
    with database.transaction() as session:
        assert session.scalars(select(OutboundAction.platform_order_id)).all() == ["K1"]
