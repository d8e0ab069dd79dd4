"""The anomaly rules (SPEC §9): a worker's bridge on SQLite and PostgreSQL whose clock the
test moves drives orders past each rule; the anomaly opens once, shows on the order, in
``/api/v1/anomalies``, in the subscriber feed and at ``/metrics``, and resolves when the order
moves on."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.sample_plugin import PRICE
from tests.test_hold import HOLD_MS, STORE, T0, Worker, working
from tests.test_pipeline import TOKEN
from waimai_bridge.cli.main import cli
from waimai_bridge.pipeline.anomalies import AnomalyEvaluator
from waimai_bridge.settings import AnomalyRule
from waimai_bridge.store import anomalies as anomaly_store
from waimai_bridge.store.anomaly_rules import RULES
from waimai_bridge.store.database import Database
from waimai_bridge.store.skus import SkuRow, import_skus
from waimai_bridge.store.subscriptions import subscribe
from waimai_bridge.store.tables import Delivery, OrderItem
from waimai_bridge.web.app import create_app

MINUTE = 60_000
CONSISTENT = PRICE
"""A price whose stated total agrees with its lines."""
AT_ODDS = {**PRICE, "original_amount": 2400}
"""A price whose stated total leaves out the packaging and delivery fees."""


def evaluating(
    database: Database, tmp_path: Path, anomalies: str = ""
) -> AbstractContextManager[Worker]:
    """A worker's bridge (see tests/test_hold.py) with ``anomalies`` in its ``[anomalies]``
    table; nothing evaluates in the background."""
    return working(database, tmp_path, f"[anomalies]\ninterval_seconds = 0\n{anomalies}")


@pytest.fixture
def worker(database: Database, tmp_path: Path) -> Iterator[Worker]:
    with evaluating(database, tmp_path) as made:
        yield made


def evaluate(worker: Worker, at_ms: int) -> None:
    worker.now = at_ms
    done = worker.bridge.anomalies.round()
    assert done is not None, "the evaluator holds the lease"


def open_rules(worker: Worker, order: str) -> set[str]:
    with worker.bridge.database.transaction() as session:
        found = anomaly_store.listing(session, is_open=True, limit=100)
    return {a.rule for a in found if a.platform_order_id == order}


def accepted(worker: Worker, order: str, at_ms: int) -> None:
    """An order created and accepted at ``at_ms``, stored when its hold ends."""
    worker.receive(order, "order.created", at_ms, price=CONSISTENT)
    worker.receive(order, "order.accepted", at_ms)
    worker.apply()
    worker.now = at_ms + HOLD_MS + 1
    worker.release(order)


def step(worker: Worker, order: str, code: str, at_ms: int) -> None:
    worker.receive(order, code, at_ms)
    worker.apply()


@dataclass(frozen=True)
class Scenario:
    """Bring an order to the rule's condition, then move it on."""

    rule: AnomalyRule
    setup: Callable[[Worker, str], int]
    """Brings the order there; returns when the rule's time started."""
    threshold_ms: int
    move_on: str


def _created(worker: Worker, order: str) -> int:
    worker.receive(order, "order.created", T0, price=CONSISTENT)
    worker.apply()
    return T0


def _accepted(worker: Worker, order: str) -> int:
    accepted(worker, order, T0)
    return T0


def _rider_at_store(worker: Worker, order: str) -> int:
    accepted(worker, order, T0)
    step(worker, order, "rider.at_store", T0 + 5 * MINUTE)
    return T0 + 5 * MINUTE


def _cancel_requested(worker: Worker, order: str) -> int:
    accepted(worker, order, T0)
    step(worker, order, "rider.at_store", T0 + 2 * MINUTE)  # no rider anomaly in the way
    step(worker, order, "cancel.requested", T0 + 3 * MINUTE)
    return T0 + 3 * MINUTE


def _delivering(worker: Worker, order: str) -> int:
    accepted(worker, order, T0)
    step(worker, order, "rider.delivering", T0 + 2 * MINUTE)
    return T0


SCENARIOS = [
    Scenario(AnomalyRule.NOT_ACCEPTED, _created, 10 * MINUTE, "order.accepted"),
    Scenario(AnomalyRule.NO_RIDER, _accepted, 30 * MINUTE, "rider.at_store"),
    Scenario(AnomalyRule.RIDER_AT_STORE, _rider_at_store, 15 * MINUTE, "rider.delivering"),
    Scenario(AnomalyRule.REQUEST_UNANSWERED, _cancel_requested, 10 * MINUTE, "cancel.agreed"),
    Scenario(AnomalyRule.NOT_COMPLETED, _delivering, 48 * 60 * MINUTE, "order.completed"),
]


def test_every_rule_kind_has_one_rule_and_every_evaluated_rule_a_scenario() -> None:
    assert sorted(rule.name for rule in RULES) == sorted(AnomalyRule)
    evaluated = {rule.name for rule in RULES if rule.evaluated}
    assert {scenario.rule for scenario in SCENARIOS} == evaluated


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.rule.value)
def test_a_rule_opens_once_past_its_threshold_and_resolves_when_the_order_moves_on(
    worker: Worker, scenario: Scenario
) -> None:
    started = scenario.setup(worker, "A-1")
    evaluate(worker, started + scenario.threshold_ms - MINUTE)
    assert scenario.rule.value not in open_rules(worker, "A-1")
    evaluate(worker, started + scenario.threshold_ms + MINUTE)
    assert scenario.rule.value in open_rules(worker, "A-1")
    evaluate(worker, started + scenario.threshold_ms + 2 * MINUTE)  # opened once
    with worker.bridge.database.transaction() as session:
        mine = anomaly_store.listing(session, rule=scenario.rule.value, limit=10)
    assert len(mine) == 1
    moved_at = worker.now + MINUTE
    step(worker, "A-1", scenario.move_on, moved_at)
    if scenario.rule is AnomalyRule.NOT_ACCEPTED:
        worker.release("A-1")  # accepted: its hold starts, it is stored when it ends
    evaluate(worker, moved_at + MINUTE)
    assert scenario.rule.value not in open_rules(worker, "A-1")
    with worker.bridge.database.transaction() as session:
        [resolved] = anomaly_store.listing(session, rule=scenario.rule.value, limit=10)
    assert resolved.resolved_at_ms == moved_at + MINUTE


def test_an_anomaly_shows_on_the_order_the_api_the_feed_and_the_metrics(
    worker: Worker,
) -> None:
    bridge = worker.bridge
    with bridge.database.transaction() as session:
        subscribe(session, url="https://subscriber.example.com/hook", secret="s" * 16,
                  store_ids=None, platforms=None, states=None, now_ms=T0)  # fmt: skip
        list(import_skus(session, [SkuRow("testpay", "SKU-1", "P-RICE")], now_ms=T0))
    accepted(worker, "SHOWN", T0)
    evaluate(worker, T0 + 31 * MINUTE)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(create_app(bridge, run_worker=False)) as client:
        page = client.get("/api/v1/anomalies", params={"status": "open"}, headers=headers)
        assert page.status_code == 200, page.text
        [listed] = page.json()["items"]
        assert listed["rule"] == "no_rider"
        assert (listed["store_id"], listed["platform"], listed["open"]) == (STORE, "testpay", True)
        order = client.get(f"/api/v1/orders/{listed['order_id']}", headers=headers).json()
        assert [(a["kind"], a["resolved_at"]) for a in order["anomalies"]] == [("no_rider", None)]
        metrics = client.get("/metrics").text
        assert 'waimai_anomalies_open{rule="no_rider"} 1.0' in metrics
        assert f'waimai_store_anomalies_open{{store="{STORE}"}} 1.0' in metrics
        step(worker, "SHOWN", "rider.at_store", T0 + 32 * MINUTE)
        evaluate(worker, T0 + 33 * MINUTE)
        for status, expected in (("open", []), ("resolved", ["no_rider"])):
            items = client.get(
                "/api/v1/anomalies", params={"status": status, "rule": "no_rider"},
                headers=headers,
            ).json()["items"]  # fmt: skip
            assert [item["rule"] for item in items] == expected
        refused = client.get("/api/v1/anomalies?rule=nope", headers=headers)
        assert refused.status_code == 400, refused.text  # a query that does not parse
    with bridge.database.transaction() as session:
        bodies = session.execute(select(Delivery.body).order_by(Delivery.id)).scalars()
        feed = [json.loads(body) for body in bodies]
    changes = [(b["type"], b["rule"]) for b in feed if b["type"].startswith("anomaly.")]
    assert changes == [("anomaly.opened", "no_rider"), ("anomaly.resolved", "no_rider")]
    opened = next(b for b in feed if b["type"] == "anomaly.opened")
    assert (opened["storeId"], opened["platformOrderId"], opened["resolvedAt"]) == (
        STORE, "SHOWN", None,
    )  # fmt: skip


def test_an_unmapped_line_resolves_once_its_sku_is_mapped(worker: Worker) -> None:
    accepted(worker, "SKU", T0)
    assert open_rules(worker, "SKU") == {"unmapped_sku"}
    evaluate(worker, T0 + 2 * MINUTE)
    assert open_rules(worker, "SKU") == {"unmapped_sku"}  # nothing maps it yet
    with worker.bridge.database.transaction() as session:
        list(import_skus(session, [SkuRow("testpay", "SKU-1", "P-RICE")], now_ms=T0))
    evaluate(worker, T0 + 3 * MINUTE)
    assert open_rules(worker, "SKU") == set()
    with worker.bridge.database.transaction() as session:
        items = session.execute(select(OrderItem.product_id, OrderItem.unmapped)).all()
    assert [tuple(item) for item in items] == [("P-RICE", False)]


def test_a_stated_total_at_odds_with_the_lines_opens_an_anomaly_until_the_order_ends(
    worker: Worker,
) -> None:
    worker.receive("ODD", "order.created", T0, price=AT_ODDS)  # 2 × 1200 + 100 + 500 ≠ 2400
    worker.receive("ODD", "order.accepted", T0)
    worker.apply()
    worker.now = T0 + HOLD_MS + 1
    worker.release("ODD")
    assert "total_mismatch" in open_rules(worker, "ODD")
    with worker.bridge.database.transaction() as session:
        [anomaly] = anomaly_store.listing(session, rule="total_mismatch", limit=10)
    assert "3000" in anomaly.detail
    step(worker, "ODD", "order.completed", T0 + 5 * MINUTE)
    evaluate(worker, T0 + 6 * MINUTE)
    assert open_rules(worker, "ODD") == {"unmapped_sku"}  # that one waits for the mapping


def test_a_disabled_rule_is_not_evaluated(database: Database, tmp_path: Path) -> None:
    with evaluating(database, tmp_path, 'disabled = ["not_accepted"]') as worker:
        _created(worker, "OFF")
        evaluate(worker, T0 + 60 * MINUTE)
        assert open_rules(worker, "OFF") == set()


def test_one_evaluator_at_a_time(worker: Worker) -> None:
    other = AnomalyEvaluator(worker.bridge.pipeline)
    assert worker.bridge.anomalies.round() is not None
    assert other.round() is None


def test_the_cli_lists_open_and_resolved_anomalies(worker: Worker, tmp_path: Path) -> None:
    accepted(worker, "CLI", T0)  # its line's SKU maps to nothing: unmapped_sku
    _created(worker, "LATE")
    evaluate(worker, T0 + 11 * MINUTE)  # LATE: not accepted
    step(worker, "LATE", "order.cancelled", T0 + 12 * MINUTE)
    evaluate(worker, T0 + 13 * MINUTE)
    config = tmp_path / "reader.toml"  # the command reads the database, nothing more
    config.write_text(f'[bridge]\ndatabase_url = "{worker.bridge.database.url}"\n', "utf-8")
    runner = CliRunner()
    listed = runner.invoke(cli, ["--config", str(config), "anomalies", "--open", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [(a["rule"], a["platform_order_id"]) for a in json.loads(listed.output)] == [
        ("unmapped_sku", "CLI")
    ]
    every = runner.invoke(
        cli, ["--config", str(config), "anomalies", "--rule", "not_accepted"],
        env={"COLUMNS": "200"},
    )  # fmt: skip
    assert every.exit_code == 0, every.output
    assert "not_accepted" in every.output
    assert "LATE" in every.output
    refused = runner.invoke(cli, ["--config", str(config), "anomalies", "--rule", "nope"])
    assert refused.exit_code == 2


def test_an_unmapped_line_stays_open_after_its_order_is_finished(worker: Worker) -> None:
    accepted(worker, "DONE", T0)
    step(worker, "DONE", "order.completed", T0 + 10 * MINUTE)
    evaluate(worker, T0 + 11 * MINUTE)
    assert open_rules(worker, "DONE") == {"unmapped_sku"}
