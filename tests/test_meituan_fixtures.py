"""The Meituan plugin against its shipped contract fixtures (``fixtures/push``,
``fixtures/action``), and the fixtures (all of them, ``config.json``, ``errors/`` and
``scenarios/`` included) against the script that writes them. The contract harness runs
every kind in ``tests/test_contract_meituan.py``."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from waimai_bridge_meituan.testing import (
    FIXTURE_PUBLIC_BASE_URL,
    FakeMeituan,
    fixture_config,
)

from tests.processes import ROOT
from waimai_bridge.errors import PushRefused
from waimai_bridge.hookcalls import Platform
from waimai_bridge.models import ActionRequest, ActionResult, InboundRequest

FIXTURES = resources.files("waimai_bridge_meituan").joinpath("fixtures")


def fixture_files(folder: str) -> list[str]:
    return sorted(
        entry.name for entry in FIXTURES.joinpath(folder).iterdir() if entry.name.endswith(".json")
    )


def load(folder: str, name: str) -> dict[str, Any]:
    content: dict[str, Any] = json.loads(
        FIXTURES.joinpath(folder).joinpath(name).read_text(encoding="utf-8")
    )
    return content


@pytest.fixture
def fake() -> Iterator[FakeMeituan]:
    with FakeMeituan() as running:
        yield running


def inbound(request: dict[str, Any]) -> InboundRequest:
    return InboundRequest(
        method=request["method"],
        url=f"{FIXTURE_PUBLIC_BASE_URL}/webhooks/meituan/{request['kind']}",
        kind=request["kind"],
        query=[tuple(pair) for pair in request["query"]],
        headers=request["headers"],
        body=request["body"].encode("utf-8"),
        received_at_ms=1,
    )


def test_there_is_a_fixture_for_every_push_kind_code_and_action(meituan: Platform) -> None:
    codes: set[str] = set()
    for name in fixture_files("push"):
        codes |= {event["native_code"] for event in load("push", name)["expect"]["events"]}
    assert codes == {row.code for row in meituan.manifest.native_codes}
    actions = {load("action", name)["action"]["action"] for name in fixture_files("action")}
    assert actions == {action.value for action in meituan.manifest.actions}
    kinds = {load("push", name)["request"]["kind"] for name in fixture_files("push")}
    assert kinds >= {"order_paid", "order_confirmed", "order_completed", "order_cancelled",
                     "refund", "partial_refund", "logistics"}  # fmt: skip


@pytest.mark.parametrize("name", fixture_files("push"))
def test_push_fixture(meituan: Platform, name: str) -> None:
    fixture = load("push", name)
    expect = fixture["expect"]
    config = fixture_config()
    request = inbound(fixture["request"])
    if expect["reply"]["status"] != 200:
        with pytest.raises(PushRefused) as refused:
            meituan.parse_event(request, config)
        reply = refused.value.reply
        assert reply is not None
        assert {"status": refused.value.status, "body": reply.body} == expect["reply"]
        assert expect["events"] == []
        return
    parsed = meituan.parse_event(request, config)
    assert parsed is not None
    assert {"status": parsed.reply.status, "body": parsed.reply.body} == expect["reply"]
    assert [
        {key: value for key, value in event.model_dump().items() if key in expected}
        for event, expected in zip(parsed.events, expect["events"], strict=True)
    ] == expect["events"]
    assert [meituan.map_state(event).model_dump(mode="json") for event in parsed.events] == expect[
        "states"
    ]
    prices = [meituan.price_breakdown(event, config) for event in parsed.events]
    found = next((price.model_dump(mode="json") for price in prices if price is not None), None)
    assert found == expect["price"]


@pytest.mark.parametrize("name", fixture_files("action"))
def test_action_fixture(meituan: Platform, fake: FakeMeituan, name: str) -> None:
    fixture = load("action", name)
    expect = fixture["expect"]
    result = meituan.outbound_action(
        ActionRequest.model_validate(fixture["action"]), fixture_config(api_base=fake.api_base)
    )
    assert result == ActionResult.model_validate(expect["result"])
    [call] = fake.calls
    assert (call.method, call.path, call.params, call.sig_ok) == (
        expect["method"],
        expect["path"],
        expect["params"],
        True,
    )


def _script() -> ModuleType:
    path = Path(ROOT) / "plugins" / "meituan" / "make_meituan_fixtures.py"
    spec = importlib.util.spec_from_file_location("meituan_make_meituan_fixtures", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_fixtures_are_what_the_script_writes() -> None:
    wanted: dict[str, str] = _script().build()
    folder = Path(str(FIXTURES))
    on_disk = {
        path.relative_to(folder).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(folder.rglob("*.json"))
    }
    assert on_disk == wanted, "run: python plugins/meituan/make_meituan_fixtures.py"
