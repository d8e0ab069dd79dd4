"""The ``waimai-bridge`` command line (SPEC §7.2).

The plugins other packages installed in the same environment are blocked
(``WAIMAI_BLOCK_PLUGINS``) and left out of what the tests compare: the tests see the
bridge's own plugins, whatever else is installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.conftest import Install
from tests.test_plugin_loading import BROKEN_MANIFEST
from waimai_bridge.cli import cli
from waimai_bridge.plugins import BLOCK_ENV, ENTRY_POINT_GROUP

SPEC_COMMANDS = ("serve", "worker", "migrate", "demo", "contract", "plugins", "orders")
OWN_PLUGINS = {
    "eleme": "waimai-bridge-eleme",
    "meituan": "waimai-bridge-meituan",
    "own_pos": "waimai-bridge-own-pos",
}
"""The bridge's own plugins and the distributions that install them."""


def foreign_plugins() -> list[str]:
    """The names of the installed plugins that are not the bridge's own."""
    return sorted(
        entry_point.name
        for entry_point in entry_points(group=ENTRY_POINT_GROUP)
        if entry_point.dist is None or OWN_PLUGINS.get(entry_point.name) != entry_point.dist.name
    )


def blocking(*names: str) -> str:
    """``WAIMAI_BLOCK_PLUGINS`` blocking ``names`` and every plugin not the bridge's own."""
    return ",".join([*names, *foreign_plugins()])


def own(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The rows of ``plugins --json`` of the bridge's own plugins, by name."""
    return {row["name"]: row for row in rows if row["name"] in OWN_PLUGINS}


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for variable in ("WAIMAI_CONFIG", "WAIMAI_DATABASE_URL", "WAIMAI_BROKER_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(BLOCK_ENV, blocking())
    return CliRunner()


def test_other_installed_plugins_are_blocked_and_shown_so(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row["status"] for row in json.loads(result.output)}
    assert {name: rows[name] for name in OWN_PLUGINS} == dict.fromkeys(OWN_PLUGINS, "valid")
    assert {name: rows[name] for name in foreign_plugins()} == dict.fromkeys(
        foreign_plugins(), "blocked"
    )


def test_help_lists_every_command_of_the_interface(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["--help"], prog_name="waimai-bridge")
    assert result.exit_code == 0
    listed = {
        line.split()[0]
        for line in result.output.split("Commands:")[1].splitlines()
        if line.startswith("  ") and not line.startswith("    ")
    }
    assert set(SPEC_COMMANDS) <= listed
    assert "not built" not in result.output


def test_plugins_lists_the_three_platforms_valid(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = own(json.loads(result.output))
    assert set(rows) == set(OWN_PLUGINS)
    for row in rows.values():
        assert row["status"] == "valid"
        assert row["contract_version"].split(".")[0] == "1"  # meituan is at 1.1
        assert row["version"] == "0.1.0"
        assert row["native_codes"] > 0
        assert row["configured"] is False


def test_plugins_table_shows_status(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["plugins"])
    assert result.exit_code == 0
    for name in ("eleme", "meituan", "own_pos"):
        assert any(name in line and "valid" in line for line in result.output.splitlines())


def test_plugins_shows_what_is_configured(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "waimai.toml"
    config.write_text(
        '[platforms.meituan]\napp_id = 6123\napp_secret = "x"\n'
        '[stores.S1]\nmeituan = { app_poi_code = "p1" }\n'
        '[stores.S2]\nmeituan = { app_poi_code = "p2" }\n',
        encoding="utf-8",
    )
    result = runner.invoke(cli, ["--config", str(config), "plugins", "--json"])
    assert result.exit_code == 0, result.output
    rows = own(json.loads(result.output))
    assert rows["meituan"]["configured"] is True
    assert rows["meituan"]["stores"] == 2
    assert rows["eleme"]["configured"] is False


def test_an_invalid_config_stops_with_its_problems_and_no_secret(
    runner: CliRunner, tmp_path: Path
) -> None:
    config = tmp_path / "waimai.toml"
    config.write_text('[platforms.meituan]\napp_secret = "TOP-SECRET"\n', encoding="utf-8")
    result = runner.invoke(cli, ["--config", str(config), "plugins"])
    assert result.exit_code == 2
    assert f"invalid configuration in {config}" in result.output
    assert "platforms.meituan.app_id: missing required key" in result.output
    assert "TOP-SECRET" not in result.output


def test_blocked_plugins_are_shown_as_blocked(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(BLOCK_ENV, blocking("meituan"))
    rows = own(json.loads(runner.invoke(cli, ["plugins", "--json"]).output))
    assert rows["meituan"]["status"] == "blocked"
    assert rows["eleme"]["status"] == "valid"


def test_the_installed_command_refuses_a_broken_plugin(install: Install, tmp_path: Path) -> None:
    others = blocking()
    install("waimai-bridge-broken", "broken_plugin", BROKEN_MANIFEST, entry_point="broken")
    environment = {key: value for key, value in os.environ.items() if key != "WAIMAI_CONFIG"}
    environment[BLOCK_ENV] = others
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(tmp_path / "site"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    environment["COLUMNS"] = "200"
    script = Path(sys.executable).parent / "waimai-bridge"
    result = subprocess.run(
        [str(script), "plugins"],
        capture_output=True, text=True, env=environment, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert (
        "broken: plugin 'broken', hook 'plugin_manifest', at $.display_name: Field required"
        in result.stdout
    )
    assert any("eleme" in line and "valid" in line for line in result.stdout.splitlines())
