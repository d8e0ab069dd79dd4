"""The anomaly evaluator's round: what it measures against (which platforms send riders,
how long each platform's requests may wait) and what it reports having opened and
resolved, rule by rule, with the disabled rules left out and the others still evaluated."""

from __future__ import annotations

from pathlib import Path

from tests.sample_plugin import SamplePlugin, manifest
from tests.test_anomalies import MINUTE, _accepted, _created, evaluating, open_rules, step
from tests.test_anomalies import worker as worker  # the fixture
from tests.test_hold import T0, Worker
from waimai_bridge.store.database import Database


def test_the_window_knows_who_sends_riders_and_how_long_requests_may_wait(worker: Worker) -> None:
    registry = worker.bridge.registry
    deadlines = {"cancel_requested": 12, "refund_requested": 30}
    registry.add("deadline", SamplePlugin(manifest(name="deadline", request_deadlines=deadlines)))
    tight = {"refund_requested": 4}  # less than the margin: flagged after a minute
    registry.add("tight", SamplePlugin(manifest(name="tight", request_deadlines=tight)))
    registry.add("plain", SamplePlugin(manifest(name="plain")))
    window = worker.bridge.anomalies.window()
    ours = {"testpay", "deadline", "tight", "plain"}  # installed plugins aside
    assert window.rider_platforms & ours == {"testpay"}  # the sample manifest has no rider
    assert {name: minutes for name, minutes in window.request_minutes.items() if name in ours} == {
        "deadline": 12 - 5,  # [anomalies] request_margin_minutes = 5
        "tight": 1.0,
    }


def test_a_disabled_rule_is_left_out_and_the_rules_after_it_still_run(
    database: Database, tmp_path: Path
) -> None:
    with evaluating(database, tmp_path, 'disabled = ["not_accepted"]') as worker:
        _created(worker, "OFF")  # would be not_accepted, the first rule
        _accepted(worker, "ON")  # no rider
        worker.now = T0 + 60 * MINUTE
        done = worker.bridge.anomalies.round()
        assert done is not None
        assert (done.opened, done.resolved) == ({"no_rider": 1}, {})
        assert "not_accepted" not in open_rules(worker, "OFF")
        assert "no_rider" in open_rules(worker, "ON")
        step(worker, "ON", "rider.at_store", T0 + 61 * MINUTE)
        worker.now = T0 + 62 * MINUTE
        done = worker.bridge.anomalies.round()
        assert done is not None
        assert (done.opened, done.resolved) == ({}, {"no_rider": 1})
