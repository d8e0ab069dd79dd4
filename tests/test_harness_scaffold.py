"""``waimai-bridge new-plugin``: the scaffold passes the structural suites at once, and every
other suite fails at high with a message saying what to fill in."""

from __future__ import annotations

import json
import os
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from waimai_bridge.harness.commands import new_plugin
from waimai_bridge.harness.suites import STRUCTURAL


def installed(site: Path, distribution: str, name: str, package: str) -> Path:
    """A site folder in which the scaffold counts as installed (its entry point and version)."""
    info = site / f"{distribution.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 0.1.0\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[waimai_bridge]\n{name} = {package}.plugin\n", encoding="utf-8"
    )
    return site


def contract(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """``waimai-bridge contract`` in a process that sees the scaffold as installed."""
    site = folder / "site"
    if not site.exists():
        installed(
            site, "waimai-bridge-demo-platform", "demo_platform", "waimai_bridge_demo_platform"
        )
    env = {key: value for key, value in os.environ.items() if not key.startswith("WAIMAI_")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(folder / "waimai-bridge-demo-platform")])
    command = [sys.executable, "-m", "waimai_bridge", "contract", "demo_platform", "-v"]
    return subprocess.run([*command, *arguments], env=env, cwd=folder, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip


@pytest.fixture
def scaffolded(tmp_path: Path) -> Path:
    result = CliRunner().invoke(
        new_plugin, ["demo_platform", "--directory", str(tmp_path / "waimai-bridge-demo-platform")]
    )
    assert result.exit_code == 0, result.output
    return tmp_path


def test_the_scaffold_is_a_complete_package(scaffolded: Path) -> None:
    root = scaffolded / "waimai-bridge-demo-platform"
    package = root / "waimai_bridge_demo_platform"
    assert sorted(path.relative_to(root).as_posix() for path in root.rglob("*.*")) == [
        "README.md", "pyproject.toml", "tests/test_contract.py",
        "waimai_bridge_demo_platform/__init__.py",
        "waimai_bridge_demo_platform/fixtures/config.json",
        "waimai_bridge_demo_platform/manifest.json", "waimai_bridge_demo_platform/plugin.py",
        "waimai_bridge_demo_platform/py.typed", "waimai_bridge_demo_platform/testing.py",
    ]  # fmt: skip
    for source in root.rglob("*.py"):
        py_compile.compile(str(source), doraise=True, cfile=str(scaffolded / "compiled.pyc"))
    assert json.loads((package / "manifest.json").read_text("utf-8"))["name"] == "demo_platform"
    assert 'demo_platform = "waimai_bridge_demo_platform.plugin"' in (
        (root / "pyproject.toml").read_text("utf-8")
    )
    assert 'TestDemoPlatform = contract_suite("demo_platform", strictness="high")' in (
        (root / "tests" / "test_contract.py").read_text("utf-8")
    )


OPTIONAL_HOOKS = ("pull_events", "confirm_pull", "fetch_order", "verify_action", "order_details",
                  "authorize_url", "exchange_code", "refresh_credentials")  # fmt: skip


def test_the_scaffold_passes_the_structural_suites_at_once(scaffolded: Path) -> None:
    result = contract(scaffolded, "--strictness", "high", "--suites", ",".join(STRUCTURAL))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == (
        "demo_platform: 11 passed, 0 failed, 8 skipped (strictness high)"
    )  # the eight optional hooks, left commented out


def test_at_high_the_rest_fails_saying_what_to_fill_in(scaffolded: Path) -> None:
    result = contract(scaffolded, "--strictness", "high")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    statuses = {line.split()[1]: line.split()[0] for line in lines if "::" in line}
    optional = {f"hooks::{hook}" for hook in OPTIONAL_HOOKS}
    assert {case for case, status in statuses.items() if status == "SKIPPED"} >= optional
    assert {case for case, status in statuses.items() if status == "PASSED"} == {
        case for case in statuses if case.split("::")[0] in STRUCTURAL
    } - optional
    failures = [line for line in lines if line.startswith("FAILED")]
    assert len(failures) == 11
    messages = [line.strip() for line in lines if line.startswith("         ")]
    assert all(message.startswith(("missing (strictness high): ", "not applicable: "))
               for message in messages)  # fmt: skip
    assert any("fill in fake_platform in waimai_bridge_demo_platform/testing.py" in message
               for message in messages)  # fmt: skip


def test_a_hook_left_unfilled_is_named_once_a_fixture_reaches_it(scaffolded: Path) -> None:
    fixtures = (
        scaffolded / "waimai-bridge-demo-platform" / "waimai_bridge_demo_platform" / "fixtures"
    )
    push = {"request": {"method": "POST", "body": "{}"},
            "expect": {"reply": {"status": 200}, "events": []}}  # fmt: skip
    (fixtures / "first-push.json").write_text(json.dumps(push), encoding="utf-8")
    result = contract(scaffolded, "--suites", "push")
    assert result.returncode == 1
    assert (
        "fixture first-push.json: parse_event is not implemented yet: fill in parse_event in "
        "waimai_bridge_demo_platform/plugin.py: verify the push's signature"
    ) in result.stdout


@pytest.mark.parametrize(
    ("name", "problem"),
    [("Demo", "is not a platform name"), ("1demo", "is not a platform name")],
)
def test_a_bad_name_is_refused(tmp_path: Path, name: str, problem: str) -> None:
    result = CliRunner().invoke(new_plugin, [name, "--directory", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert problem in result.output


def test_a_folder_that_is_not_empty_is_left_alone(scaffolded: Path) -> None:
    folder = scaffolded / "waimai-bridge-demo-platform"
    result = CliRunner().invoke(new_plugin, ["demo_platform", "--directory", str(folder)])
    assert result.exit_code == 1
    assert "exists and is not empty" in result.output
