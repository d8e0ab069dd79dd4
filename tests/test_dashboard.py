"""The Grafana dashboard: the committed JSON is the generator's output, its panels cover the
series of docs/operations.md and no other, and a running bridge exposes every series and
label it queries."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.test_pipeline import config_text, registry
from waimai_bridge.config import load_config
from waimai_bridge.runtime import Bridge
from waimai_bridge.web.app import create_app

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = ROOT / "deploy" / "grafana" / "dashboard.py"
DASHBOARD = ROOT / "deploy" / "grafana" / "waimai-bridge.json"
OPERATIONS = ROOT / "docs" / "operations.md"
ROWS = ["Intake", "Queue & holds", "Actions", "Subscribers", "Anomalies & jobs"]
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
NAME = re.compile(r"\bwaimai_[a-z0-9_]+")
GROUPED_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
MATCHED = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)\s*\"")


@dataclass(frozen=True)
class Series:
    """A row of docs/operations.md's series tables."""

    name: str
    type: str
    labels: frozenset[str]


def documented() -> dict[str, Series]:
    """The series of docs/operations.md's "Metrics" tables, by name."""
    text = OPERATIONS.read_text("utf-8")
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    series: dict[str, Series] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`waimai_"):
            continue
        name = cells[0].strip("`")
        series[name] = Series(name, cells[1], frozenset(re.findall(r"`([a-z_]+)`", cells[2])))
    return series


def panels() -> list[dict[str, Any]]:
    """The committed dashboard's panels (rows included)."""
    board: dict[str, Any] = json.loads(DASHBOARD.read_text("utf-8"))
    found: list[dict[str, Any]] = board["panels"]
    return found


def queries(panel: dict[str, Any]) -> list[str]:
    return [str(target["expr"]) for target in panel.get("targets", [])]


def series_of(name: str, series: dict[str, Series]) -> Series | None:
    """The documented series a name in a query stands for (a histogram's ``_bucket``,
    ``_sum`` and ``_count`` stand for the histogram)."""
    if name in series:
        return series[name]
    for suffix in HISTOGRAM_SUFFIXES:
        base = name.removesuffix(suffix)
        if base != name and base in series and series[base].type == "histogram":
            return series[base]
    return None


def queried() -> dict[str, Series]:
    """The documented series the dashboard's queries name."""
    series = documented()
    named = {
        name
        for panel in panels()
        for query in queries(panel)
        for name in NAME.findall(query.replace("$", " "))
    }
    found = {name: series_of(name, series) for name in named}
    return {hit.name: hit for hit in found.values() if hit is not None}


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("waimai_bridge_dashboard", GENERATOR)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_the_committed_dashboard_is_what_the_generator_builds() -> None:
    rendered: str = _generator().render()
    assert DASHBOARD.read_text("utf-8") == rendered, (
        "deploy/grafana/waimai-bridge.json is out of date (or edited by hand): run "
        "python deploy/grafana/dashboard.py"
    )


def test_check_fails_on_a_stale_dashboard_and_passes_on_a_fresh_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = _generator()
    output = tmp_path / "waimai-bridge.json"
    monkeypatch.setattr(generator, "OUTPUT", output)
    output.write_text(DASHBOARD.read_text("utf-8").replace("Intake", "Outtake"), "utf-8")
    assert generator.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert generator.main([]) == 0
    assert generator.main(["--check"]) == 0
    assert output.read_text("utf-8") == DASHBOARD.read_text("utf-8")


def test_the_docs_tables_are_read() -> None:
    series = documented()
    assert series["waimai_webhook_requests_total"] == Series(
        "waimai_webhook_requests_total", "counter", frozenset({"platform", "status"})
    )
    assert series["waimai_push_to_commit_seconds"].labels == frozenset()
    assert series["waimai_store_anomalies_open"].type == "gauge"
    assert len(series) >= 25


def test_every_documented_series_has_a_panel_and_every_panel_only_documented_ones() -> None:
    series = documented()
    unknown: dict[str, list[str]] = {}
    for panel in panels():
        if panel["type"] == "row":
            continue
        assert queries(panel), f"panel {panel['title']!r} has no query"
        for query in queries(panel):
            for name in NAME.findall(query.replace("$", " ")):
                if series_of(name, series) is None:
                    unknown.setdefault(panel["title"], []).append(name)
    assert not unknown, f"panels query series docs/operations.md does not list: {unknown}"
    missing = sorted(set(series) - set(queried()))
    assert not missing, f"series of docs/operations.md without a panel: {missing}"


def test_queries_group_and_filter_by_labels_the_series_has() -> None:
    series = documented()
    for panel in panels():
        for query in queries(panel):
            names = {series_of(name, series) for name in NAME.findall(query.replace("$", " "))}
            labels = set().union(*(hit.labels for hit in names if hit is not None))
            if any(hit is not None and hit.type == "histogram" for hit in names):
                labels.add("le")
            used = {
                label.strip()
                for group in GROUPED_BY.findall(query)
                for label in group.split(",")
                if label.strip()
            } | set(MATCHED.findall(query))
            assert used <= labels, f"{panel['title']!r} uses labels {used - labels}: {query}"


def test_the_dashboard_has_its_rows_and_variables() -> None:
    board = json.loads(DASHBOARD.read_text("utf-8"))
    assert [panel["title"] for panel in board["panels"] if panel["type"] == "row"] == ROWS
    assert board["panels"][0]["type"] == "row"
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("platform", "store"):
        assert variables[name]["query"].startswith("label_values(waimai_")
        assert variables[name]["query"].endswith(f", {name})")
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """A running bridge (the app and its embedded worker) on a SQLite database."""
    path = tmp_path / "bridge.toml"
    path.write_text(config_text(f"sqlite:///{tmp_path / 'bridge.sqlite3'}"), "utf-8")
    plugins = registry()
    with TestClient(create_app(Bridge(load_config(path, plugins), plugins))) as client:
        yield client


def family_of(series: Series) -> str:
    """The metric family a series is exposed in (the text parser names a counter's family
    without ``_total``)."""
    if series.type == "counter":
        return series.name.removesuffix("_total")
    return series.name


def test_a_running_bridge_exposes_every_series_the_dashboard_queries(
    client: TestClient,
) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    exposed = {family.name: family for family in text_string_to_metric_families(response.text)}
    wanted = queried()
    assert len(wanted) == len(documented())
    missing = {name for name, series in wanted.items() if family_of(series) not in exposed}
    assert not missing, f"the dashboard queries series /metrics does not expose: {missing}"
    for name, series in wanted.items():
        family = exposed[family_of(series)]
        assert family.type == series.type, f"{name} is a {family.type}, not a {series.type}"
        for sample in family.samples:
            assert set(sample.labels) - {"le"} <= series.labels, (name, sample)
