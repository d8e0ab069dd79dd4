"""The store as the docs state it, where the suite left mutants alive: which subscriptions
an update is written for (docs/subscribers.md), when a failed delivery is tried again, what
unsubscribing drops, parked inbox events and failed actions put back in line, and the SKU
mapping's listing and reading (SPEC §6)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import delete, select, update

import tests.test_store as store_test
from waimai_bridge.models import NativeEvent
from waimai_bridge.models import PlatformState as P
from waimai_bridge.store import actions, inbox, outbox, subscriptions
from waimai_bridge.store.actions import ActionStatus
from waimai_bridge.store.database import Database
from waimai_bridge.store.holds import Release, release_due
from waimai_bridge.store.skus import (
    SHOWN_PROBLEMS,
    ImportSummary,
    SkuFileError,
    SkuRow,
    decode_sku_csv,
    import_skus,
    list_skus,
    read_sku_csv,
    read_sku_items,
)
from waimai_bridge.store.tables import Delivery, InboxEvent, OutboundAction, PlatformOrder

T0 = 1_700_000_000_000
SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

FILTERS: dict[str, dict[str, list[str] | None]] = {
    "everything": {},
    "store S001": {"store_ids": ["S001"]},
    "eleme": {"platforms": ["eleme"]},
    "meituan": {"platforms": ["meituan"]},
    "eleme or meituan": {"platforms": ["eleme", "meituan"]},
    "refunds": {"states": ["refunding", "refunded"]},
    "S002 meituan completed": {"store_ids": ["S002"], "platforms": ["meituan"],
                               "states": ["completed"]},
}  # fmt: skip
"""Subscriptions by name: absent filters let everything through."""


def _subscribe_all(database: Database) -> dict[int, str]:
    names: dict[int, str] = {}
    with database.transaction() as session:
        for name, filters in FILTERS.items():
            row = subscriptions.subscribe(
                session, url=f"https://pos.example.com/{len(names)}", secret="s" * 16,
                store_ids=filters.get("store_ids"), platforms=filters.get("platforms"),
                states=filters.get("states"), now_ms=T0,
            )  # fmt: skip
            names[row.id] = name
    return names


def _hearing(database: Database, names: dict[int, str]) -> set[str]:
    """The subscriptions the updates written so far are for; the outbox is emptied."""
    with database.transaction() as session:
        rows = session.execute(select(Delivery.subscription_id)).scalars().all()
        session.execute(delete(Delivery))
    assert len(rows) == len(set(rows)), "one delivery per subscription"
    return {names[subscription_id] for subscription_id in rows}


def _status(database: Database, *, store_id: str, platform: str, status: str) -> None:
    with database.transaction() as session:
        outbox.order_update(
            session, order_id=7, platform=platform, store_id=store_id, status=status,
            previous_status=None, rider_state=None, version=1, now_ms=T0,
        )  # fmt: skip


def test_an_order_update_is_written_for_the_subscriptions_whose_filters_it_passes(
    database: Database,
) -> None:
    names = _subscribe_all(database)
    _status(database, store_id="S001", platform="eleme", status="refunding")
    assert _hearing(database, names) == {
        "everything", "store S001", "eleme", "eleme or meituan", "refunds",
    }  # fmt: skip
    _status(database, store_id="S002", platform="meituan", status="completed")
    assert _hearing(database, names) == {
        "everything", "meituan", "eleme or meituan", "S002 meituan completed",
    }  # fmt: skip
    _status(database, store_id="S002", platform="own_pos", status="completed")
    assert _hearing(database, names) == {"everything"}
    _status(database, store_id="S003", platform="meituan", status="refunded")
    assert _hearing(database, names) == {"everything", "meituan", "eleme or meituan", "refunds"}


def test_an_anomaly_is_told_to_the_subscriptions_of_its_store_and_platform_whatever_their_states(
    database: Database,
) -> None:
    names = _subscribe_all(database)
    with database.transaction() as session:
        outbox.anomaly_change(
            session, anomaly_id=1, rule="not_accepted", detail="waiting", order_id=7,
            platform="meituan", platform_order_id="M-1", store_id="S002", opened_at_ms=T0,
            resolved_at_ms=None, now_ms=T0,
        )  # fmt: skip
    with database.transaction() as session:
        assert set(session.execute(select(Delivery.order_id)).scalars()) == {7}
    assert _hearing(database, names) == {
        "everything", "meituan", "eleme or meituan", "refunds", "S002 meituan completed",
    }  # fmt: skip


def _failed(database: Database, *, now_ms: int, give_up_ms: int) -> tuple[int | None, Delivery]:
    """The pending delivery taken at ``now_ms`` and failed: when it is due again, and it."""
    with database.transaction() as session:
        [row] = outbox.take_due(session, now_ms=now_ms, lease_ms=2 * MINUTE, limit=10)
        again = outbox.not_delivered(
            session, row, "HTTP 503: " + "x" * 2000, now_ms=now_ms,
            first_retry_ms=SECOND, give_up_ms=give_up_ms,
        )  # fmt: skip
    with database.transaction() as session:
        stored = session.execute(select(Delivery)).scalar_one()
    return again, stored


def test_a_failed_delivery_backs_off_doubling_to_five_minutes_then_dies(
    database: Database,
) -> None:
    with database.transaction() as session:
        subscriptions.subscribe(
            session, url="https://pos.example.com/", secret="s" * 16,
            store_ids=None, platforms=None, states=None, now_ms=T0,
        )  # fmt: skip
    _status(database, store_id="S001", platform="eleme", status="paid")
    give_up_ms = 20 * MINUTE
    now, waits = T0, list[int]()
    while True:
        again, stored = _failed(database, now_ms=now, give_up_ms=give_up_ms)
        assert stored.attempts == len(waits) + 1
        assert stored.last_error is not None
        assert len(stored.last_error) == 1000
        if again is None:
            break
        assert (stored.status, stored.next_attempt_at_ms) == ("pending", again)
        with database.transaction() as session:
            assert outbox.take_due(session, now_ms=again - 1, lease_ms=MINUTE, limit=10) == []
            assert outbox.next_due_ms(session) == again
        waits.append(again - now)
        now = again
        assert len(waits) < 20, f"still retrying after {waits}"
    doubling = [SECOND * 2**n for n in range(9)]  # 1 s … 256 s
    assert waits[:9] == doubling
    assert set(waits[9:]) == {5 * MINUTE}
    assert now - T0 >= give_up_ms > now - T0 - 5 * MINUTE  # tried until the give-up time
    assert stored.status == "dead"
    with database.transaction() as session:
        assert [row.id for row in outbox.dead(session)] == [stored.id]
        assert outbox.next_due_ms(session) is None


def test_unsubscribing_drops_the_subscriptions_undelivered_updates_only(
    database: Database,
) -> None:
    names = _subscribe_all(database)
    _status(database, store_id="S001", platform="eleme", status="refunding")
    ids = {name: subscription_id for subscription_id, name in names.items()}
    with database.transaction() as session:
        assert subscriptions.unsubscribe(session, ids["eleme"]) is True
    with database.transaction() as session:
        assert subscriptions.unsubscribe(session, ids["eleme"]) is False
        left = {row.id for row in subscriptions.subscriptions(session)}
    assert left == set(names) - {ids["eleme"]}
    assert _hearing(database, names) == {"everything", "store S001", "eleme or meituan", "refunds"}


MAPPINGS = [
    SkuRow(platform, f"SKU-{n}", f"P-{n % 3}")
    for platform in ("eleme", "meituan", "own_pos")
    for n in range(7)
]


def test_the_mapping_is_listed_by_platform_and_code_page_by_page_and_filtered(
    database: Database,
) -> None:
    with database.transaction() as session:
        for _ in import_skus(session, list(reversed(MAPPINGS)), now_ms=T0):
            pass
    everything = sorted((row.platform, row.sku_code) for row in MAPPINGS)
    for limit in (1, 4, len(MAPPINGS), len(MAPPINGS) + 1):
        pages: list[list[tuple[str, str]]] = []
        after = None
        while True:
            with database.transaction() as session:
                rows, more = list_skus(session, after=after, limit=limit)
            pages.append([(row.platform, row.sku_code) for row in rows])
            assert len(rows) <= limit
            if not more:
                break
            assert len(rows) == limit
            after = pages[-1][-1]
        assert [key for page in pages for key in page] == everything, limit
    with database.transaction() as session:
        rows, more = list_skus(session, platform="meituan", product_id="P-1", limit=10)
        assert [(r.platform, r.sku_code, r.product_id) for r in rows] == [
            ("meituan", "SKU-1", "P-1"), ("meituan", "SKU-4", "P-1"),
        ]  # fmt: skip
        assert more is False
        rows, _ = list_skus(session, sku_code="SKU-6", limit=10)
        assert [r.platform for r in rows] == ["eleme", "meituan", "own_pos"]
        rows, more = list_skus(session, platform="eleme", after=("eleme", "SKU-4"), limit=1)
        assert ([r.sku_code for r in rows], more) == (["SKU-5"], True)
        rows, more = list_skus(session, platform="eleme", after=("eleme", "SKU-4"), limit=2)
        assert ([r.sku_code for r in rows], more) == (["SKU-5", "SKU-6"], False)  # all there is


def test_an_import_counts_what_it_added_changed_and_left_as_it_was(database: Database) -> None:
    first = [SkuRow("eleme", f"SKU-{n}", "P-1") for n in range(4)]
    again = [
        SkuRow("eleme", "SKU-0", "P-1"), SkuRow("eleme", "SKU-1", "P-1"),
        SkuRow("eleme", "SKU-2", "P-2"), SkuRow("eleme", "SKU-3", "P-2"),
        SkuRow("meituan", "SKU-0", "P-1"),
    ]  # fmt: skip
    with database.transaction() as session:
        assert list(import_skus(session, first, now_ms=T0))[-1] == ImportSummary(4, 0, 0)
    with database.transaction() as session:
        assert list(import_skus(session, again, now_ms=T0 + 1))[-1] == ImportSummary(1, 2, 2)
        rows, _ = list_skus(session, limit=10)
    assert [(r.platform, r.sku_code, r.product_id, r.updated_at_ms) for r in rows] == [
        ("eleme", "SKU-0", "P-1", T0), ("eleme", "SKU-1", "P-1", T0),
        ("eleme", "SKU-2", "P-2", T0 + 1), ("eleme", "SKU-3", "P-2", T0 + 1),
        ("meituan", "SKU-0", "P-1", T0 + 1),
    ]  # fmt: skip


PLATFORMS = frozenset({"eleme", "meituan"})
HEADER_LINE = "platform,sku_code,product_id\n"


def test_a_json_list_of_mappings_is_read_whole_or_refused_naming_each_bad_item() -> None:
    good = [
        {"platform": "eleme", "sku_code": " A-1 ", "product_id": "P-1"},
        {"platform": "meituan", "sku_code": "A-1", "product_id": "P-2"},
    ]
    assert read_sku_items(good, platforms=PLATFORMS) == [
        SkuRow("eleme", "A-1", "P-1"), SkuRow("meituan", "A-1", "P-2"),
    ]  # fmt: skip
    bad: list[object] = [
        *good,
        ["eleme", "A-2", "P-3"],
        {"platform": "eleme", "sku_code": "A-2"},
        {"platform": "eleme", "sku_code": 2, "product_id": "P-3"},
        {"platform": "eleme", "sku_code": "A-1", "product_id": "P-9"},
        {"platform": "jd", "sku_code": "A-3", "product_id": "P-3"},
    ]
    with pytest.raises(SkuFileError) as refused:
        read_sku_items(bad, platforms=PLATFORMS, source="body")
    assert refused.value.problems == [
        (2, "must be an object with exactly platform, sku_code, product_id"),
        (3, "must be an object with exactly platform, sku_code, product_id"),
        (4, "platform, sku_code, product_id must be strings"),
        (5, "eleme SKU 'A-1' is already mapped on item 0"),
        (6, "unknown platform 'jd' (known: eleme, meituan)"),
    ]
    assert str(refused.value).startswith("body: nothing imported, 5 bad items:\n  item 2: ")


def _received(count: int) -> list[tuple[NativeEvent, int]]:
    return [
        (
            NativeEvent(
                platform="sample", store_id="S001", platform_order_id=f"O{n}", native_code="12",
                idempotency_key=f"sample:O{n}:12", platform_time_ms=T0 + n, payload={"n": n},
            ),
            T0 + n,
        )
        for n in range(count)
    ]  # fmt: skip


def test_a_parked_event_is_listed_with_its_error_until_it_is_put_back_in_line(
    database: Database,
) -> None:
    with database.transaction() as session:
        inbox.record(session, _received(4), shard_of=lambda store: 0)
    with database.transaction() as session:
        taken = inbox.take(session, 0, limit=10, now_ms=T0 + MINUTE)
        assert len(taken) == 4
        for row in taken[:3]:
            inbox.park(session, row.id, f"boom {row.id} " + "x" * 3000, T0 + MINUTE)
    with database.transaction() as session:
        parked = inbox.failed(session)
        assert [row.id for row in parked] == [row.id for row in taken[:3]]  # oldest first
        assert all(row.status == inbox.InboxStatus.FAILED for row in parked)
        assert all(row.done_at_ms == T0 + MINUTE for row in parked)
        assert [len(row.error or "") for row in parked] == [inbox.ERROR_LENGTH] * 3
        assert parked[0].error is not None
        assert parked[0].error.startswith(f"boom {taken[0].id} ")
        assert [row.id for row in inbox.failed(session, limit=2)] == [r.id for r in taken[:2]]
    first, done = taken[0].id, taken[3].id
    with database.transaction() as session:
        again = inbox.retry(session, first, T0 + 2 * MINUTE)
        assert again is not None
        assert (again.status, again.enqueued_at_ms, again.done_at_ms) == (
            inbox.InboxStatus.PENDING, T0 + 2 * MINUTE, None,
        )  # fmt: skip
    with database.transaction() as session:
        assert inbox.retry(session, first, T0) is None  # pending now, not failed
        assert inbox.retry(session, done, T0) is None  # applied, not failed
        assert inbox.retry(session, 10**9, T0) is None  # no such row
        assert [row.id for row in inbox.failed(session)] == [r.id for r in taken[1:3]]
        assert [row.id for row in inbox.take(session, 0, limit=10, now_ms=T0)] == [first]


def test_a_refusal_of_many_bad_lines_shows_fifty_and_counts_the_rest() -> None:
    lines = "".join(f"eleme,SKU-{n},\n" for n in range(SHOWN_PROBLEMS + 3))
    with pytest.raises(SkuFileError) as refused:
        read_sku_csv(HEADER_LINE + lines, platforms=PLATFORMS, source="skus.csv")
    message = str(refused.value)
    assert message.startswith(f"skus.csv: nothing imported, {SHOWN_PROBLEMS + 3} bad lines:\n")
    assert message.count("\n  line ") == SHOWN_PROBLEMS
    assert message.endswith("product_id is empty\n  … and 3 more")
    with pytest.raises(SkuFileError) as few:
        read_sku_csv(HEADER_LINE + "eleme,SKU-1,\n", platforms=PLATFORMS)
    assert str(few.value) == "input: nothing imported, 1 bad line:\n  line 2: product_id is empty"


def outbound_action(n: int, status: ActionStatus, **row: Any) -> OutboundAction:
    """Action ``n`` of order ``O<n>`` in ``status`` (its 3 tries made), with ``row``'s
    columns instead where given."""
    values: dict[str, Any] = {
        "idempotency_key": f"key-{n}", "action": "confirm", "platform": "sample",
        "platform_order_id": f"O{n}", "store_id": "S001", "order_id": None, "request_key": None,
        "reason": None, "status": status, "attempts": 3, "attempt_limit": 3,
        "next_attempt_at_ms": T0, "in_flight_since_ms": T0, "result_code": "E",
        "result_message": "failed", "created_at_ms": T0, "updated_at_ms": T0,
    }  # fmt: skip
    return OutboundAction(**(values | row))


def test_actions_are_listed_newest_first_and_a_failed_one_is_given_more_tries(
    database: Database,
) -> None:
    statuses = [ActionStatus.FAILED, ActionStatus.DONE, ActionStatus.FAILED, ActionStatus.PENDING]
    with database.transaction() as session:
        session.add_all([outbound_action(n, status) for n, status in enumerate(statuses)])
    with database.transaction() as session:
        everything = actions.listing(session)
        assert [row.idempotency_key for row in everything] == ["key-3", "key-2", "key-1", "key-0"]
        failed = actions.listing(session, status=ActionStatus.FAILED)
        assert [row.idempotency_key for row in failed] == ["key-2", "key-0"]
        assert [row.idempotency_key for row in actions.listing(session, limit=1)] == ["key-3"]
        ids = [row.id for row in reversed(everything)]
    with database.transaction() as session:
        again = actions.retry(session, ids[0], tries=2, now_ms=T0 + MINUTE)
        assert again is not None
        assert (again.status, again.attempts, again.attempt_limit) == (ActionStatus.PENDING, 3, 5)
        assert (again.next_attempt_at_ms, again.updated_at_ms) == (T0 + MINUTE, T0 + MINUTE)
        assert again.in_flight_since_ms is None
    with database.transaction() as session:
        for row_id in (ids[0], ids[1], ids[3], 10**9):  # pending, done, pending, none
            assert actions.retry(session, row_id, tries=2, now_ms=T0) is None
        failed = actions.listing(session, status=ActionStatus.FAILED)
        assert [row.idempotency_key for row in failed] == ["key-2"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("eleme,A\x00B,P-1", "sku_code holds a control character or a lone surrogate"),
        ("eleme,A-1,P\x1f1", "product_id holds a control character or a lone surrogate"),
        ("eleme,A\ud800,P-1", "sku_code holds a control character or a lone surrogate"),
        (f"eleme,{'A' * 129},P-1", "sku_code is longer than 128 characters"),
        ("jd,A-1,P-1", "unknown platform 'jd' (known: eleme, meituan)"),
        ("eleme,A-1", "expected 3 fields (platform,sku_code,product_id), found 2"),
    ],
)
def test_a_mapping_line_names_what_no_code_may_hold(line: str, problem: str) -> None:
    with pytest.raises(SkuFileError) as refused:
        read_sku_csv(f"{HEADER_LINE}{line}\n", platforms=PLATFORMS, source="skus.csv")
    assert refused.value.problems == [(2, problem)]


def test_a_mapping_line_within_the_bounds_is_read() -> None:
    longest = f"eleme,{'A' * 128},P\u00e91 \u5546\u54c1"
    [row] = read_sku_csv(f"{HEADER_LINE}{longest}\n", platforms=PLATFORMS)
    assert (len(row.sku_code), row.product_id) == (128, "P\u00e91 \u5546\u54c1")
    with pytest.raises(SkuFileError) as refused:
        read_sku_csv(f"{HEADER_LINE}eleme,A-1,P-1\n", platforms=frozenset())
    assert refused.value.problems == [(2, "unknown platform 'eleme' (known: none)")]


def test_a_mapping_file_refused_whole_is_named_by_its_source() -> None:
    with pytest.raises(SkuFileError) as not_utf8:
        decode_sku_csv(b"platform,sku_code,product_id\neleme,A,P\n\xff\n", source="a.csv")
    assert str(not_utf8.value) == (
        "a.csv: nothing imported, 1 bad line:\n  line 3: the file is not UTF-8 text"
    )
    assert decode_sku_csv("eleme,\u5546,P".encode()) == "eleme,\u5546,P"
    with pytest.raises(SkuFileError) as no_header:
        read_sku_csv("", platforms=PLATFORMS, source="b.csv")
    assert str(no_header.value).startswith("b.csv: nothing imported, 1 bad line:\n  line 1: ")
    unclosed = f'{HEADER_LINE}eleme,"A,P\n{"x" * 200_000}'
    with pytest.raises(SkuFileError) as not_csv:
        read_sku_csv(unclosed, platforms=PLATFORMS, source="c.csv")
    assert str(not_csv.value) == (
        "c.csv: nothing imported, 1 bad line:\n  line 3: not CSV: field larger than field limit "
        "(131072)"
    )
    with pytest.raises(SkuFileError) as bad_item:
        read_sku_items([None], platforms=PLATFORMS)
    assert str(bad_item.value).startswith("input: nothing imported, 1 bad item:\n  item 0: ")


def test_due_holds_are_released_a_batch_at_a_time_in_the_order_of_their_ids(
    database: Database,
) -> None:
    orders = ["O-1", "O-2", "O-3"]
    for order in ("O-3", "O-1", "O-2"):
        created = store_test.event(P.CREATED, 0, order=order)
        store_test.apply(database, created, store_test.T0, price=store_test.PRICE)
        store_test.apply(database, store_test.event(P.ACCEPTED, 1, order=order), store_test.T0)
    now = store_test.T0 + store_test.HOLD_MS
    batches = []
    for _ in range(3):
        with database.transaction() as session:
            released = release_due(
                session, ["S001"], accept_hold_ms=store_test.HOLD_MS, now_ms=now, limit=2
            )
        assert [outcome.outcome for outcome in released] == [Release.STORED] * len(released)
        batches.append([o for o in orders if store_test.stored(database, o)[0] is not None])
    assert batches == [["O-1", "O-2"], orders, orders]


def test_due_updates_are_taken_in_due_order_leased_and_marked_as_answered(
    database: Database,
) -> None:
    with database.transaction() as session:
        subscriptions.subscribe(
            session, url="https://pos.example.com/", secret="s" * 16,
            store_ids=None, platforms=None, states=None, now_ms=T0,
        )  # fmt: skip
    for status in ("paid", "accepted", "preparing", "ready"):
        _status(database, store_id="S001", platform="eleme", status=status)
    with database.transaction() as session:
        rows = session.execute(select(Delivery).order_by(Delivery.id)).scalars().all()
        ids = [row.id for row in rows]
        for row, due in zip(rows, (T0 + 30, T0 + 10, T0 + 20, T0 + 99), strict=True):
            row.next_attempt_at_ms = due
    with database.transaction() as session:
        taken = outbox.take_due(session, now_ms=T0 + 50, lease_ms=MINUTE, limit=2)
        assert [row.id for row in taken] == [ids[1], ids[2]]  # the earliest due first
        assert {row.next_attempt_at_ms for row in taken} == {T0 + 50 + MINUTE}
    with database.transaction() as session:
        [third] = outbox.take_due(session, now_ms=T0 + 50, lease_ms=MINUTE, limit=10)
        assert third.id == ids[0]  # leased ones and the not yet due one are left
        # tried for exactly the give-up time: dead
        outbox.not_delivered(session, third, "HTTP 500: no", now_ms=T0 + 50,
                             first_retry_ms=SECOND, give_up_ms=50)  # fmt: skip
        second = session.get(Delivery, ids[1])
        assert second is not None
        outbox.not_delivered(session, second, "HTTP 502: later", now_ms=T0 + 50,
                             first_retry_ms=SECOND, give_up_ms=HOUR)  # fmt: skip
        outbox.delivered(session, ids[1], now_ms=T0 + 60)
    with database.transaction() as session:
        answered = session.get(Delivery, ids[1])
        assert answered is not None
        assert (answered.status, answered.attempts, answered.delivered_at_ms) == (
            "done", 2, T0 + 60,
        )  # fmt: skip
        assert answered.last_error is None  # its earlier failure forgotten
        later = outbox.take_due(session, now_ms=T0 + 10 * MINUTE, lease_ms=MINUTE, limit=10)
        assert [row.id for row in later] == [ids[3], ids[2]]  # not the done or dead ones
        assert [row.id for row in outbox.dead(session)] == [ids[0]]
        for row in later:
            outbox.not_delivered(session, row, "HTTP 500: no", now_ms=T0 + HOUR,
                                 first_retry_ms=SECOND, give_up_ms=HOUR)  # fmt: skip
        assert [row.id for row in outbox.dead(session)] == [ids[3], ids[2], ids[0]]  # newest first
        assert [row.id for row in outbox.dead(session, limit=1)] == [ids[3]]


def _pushed(order: str, n: int, *, store: str, inferred: bool, platform: str = "sample") -> Any:
    event = NativeEvent(
        platform=platform, store_id=store, store_inferred=inferred, platform_order_id=order,
        native_code="10", idempotency_key=f"{platform}:{order}:{n}", platform_time_ms=T0 + n,
        payload={"n": n},
    )  # fmt: skip
    return (event, T0 + n * SECOND)


def test_an_order_known_only_by_unread_pushes_is_opened_with_the_store_a_push_names(
    database: Database,
) -> None:
    received = [
        _pushed("NEW", 0, store="S004", inferred=False, platform="other"),
        _pushed("NEW", 1, store="S009", inferred=True),
        _pushed("NEW", 2, store="S002", inferred=False),
        _pushed("NEW", 3, store="S003", inferred=False),
        _pushed("READ", 5, store="S005", inferred=False),
        _pushed("GUESSED", 6, store="S006", inferred=True),
    ]
    with database.transaction() as session:
        inbox.record(session, received, shard_of=lambda store: 0)
    with database.transaction() as session:
        inbox.take(session, 0, limit=10, now_ms=T0)  # every push read …
        session.execute(  # … but those of NEW and GUESSED
            update(InboxEvent)
            .where(InboxEvent.platform_order_id.in_(["NEW", "GUESSED"]))
            .values(status="pending")
        )
        assert actions.open_from_inbox(session, "sample", "NEW") is True
        assert actions.open_from_inbox(session, "sample", "READ") is False  # applied already
        assert actions.open_from_inbox(session, "sample", "NONE") is False
        assert actions.open_from_inbox(session, "sample", "GUESSED") is True
    with database.transaction() as session:
        opened, guessed = session.execute(
            select(PlatformOrder).order_by(PlatformOrder.id)
        ).scalars()
    assert (guessed.store_id, guessed.store_inferred) == ("S006", True)  # a guess stays one
    assert (opened.platform, opened.platform_order_id) == ("sample", "NEW")
    assert (opened.store_id, opened.store_inferred) == ("S002", False)  # named, the first
    assert opened.discarded is False
    assert opened.created_at_ms == opened.updated_at_ms == T0 + 2 * SECOND
    assert opened.order_id is None


def test_an_action_outcome_is_written_as_the_subscribers_page_shows_it(database: Database) -> None:
    with database.transaction() as session:
        subscriptions.subscribe(
            session, url="https://pos.example.com/", secret="s" * 16,
            store_ids=None, platforms=None, states=["completed"], now_ms=T0,
        )  # fmt: skip
        action = outbound_action(7, ActionStatus.DONE)  # as read back from its row
        action.id, action.action, action.order_id, action.attempts = 70, "agree_refund", 42, 2
        action.result_code, action.result_message = None, None
        outbox.action_outcome(session, action, T0 + 5)
    with database.transaction() as session:
        [row] = session.execute(select(Delivery)).scalars()
    assert (row.kind, row.order_id, row.created_at_ms) == ("action.outcome", 42, T0 + 5)
    assert json.loads(row.body) == {
        "type": "action.outcome", "actionId": 70, "action": "agree_refund",
        "orderId": 42, "platform": "sample", "platformOrderId": "O7", "storeId": "S001",
        "status": "done", "attempts": 2, "result": {"code": None, "message": None},
        "timestamp": T0 + 5,
    }  # fmt: skip
