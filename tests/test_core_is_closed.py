"""The core never names a platform and plugins import only the plugin API (SPEC §2)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "waimai_bridge"
PLATFORM_NAMES = re.compile(r"eleme|meituan|饿了么|美团", re.IGNORECASE)


def core_files() -> list[Path]:
    return sorted(
        path for path in CORE.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    )


def test_the_core_names_no_platform() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in core_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PLATFORM_NAMES.search(line)
    ]
    assert offenders == []


def test_the_check_would_see_a_platform_name() -> None:
    assert PLATFORM_NAMES.search('if platform == "Eleme":')
    assert PLATFORM_NAMES.search("# 美团 quirk")


@pytest.mark.parametrize(
    "module",
    sorted((ROOT / "plugins").glob("*/*/*.py")),
    ids=lambda path: path.parent.name + "/" + path.name,
)
def test_plugins_import_only_the_plugin_api(module: Path) -> None:
    imported: set[str] = set()
    for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    core = {name for name in imported if name.split(".")[0] == "waimai_bridge"}
    assert core <= {"waimai_bridge.plugin_api"}
