"""The core's imports: no cycle, and the layers depend one way (web and cli → pipeline →
store → the state machine and models), as docs/architecture.md draws them."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "waimai_bridge"
LAYERS = ["cli", "web", "pipeline", "store"]
"""Outermost first: a package may import the ones after it, never one before it."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, own: str, modules: set[str]) -> set[str]:
    """The core modules ``path`` imports when it is imported (imports inside functions and
    under ``TYPE_CHECKING`` run later, or never, and are not counted)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [name for name in submodules if name in modules] or [node.module]
        found.update(name for name in names if name in modules)
    # a module's parent packages are imported before it anyway: not an edge of a cycle
    return {name for name in found if not own.startswith(name + ".")}


def _graph() -> dict[str, set[str]]:
    paths = {
        _module_name(path): path for path in CORE.rglob("*.py") if "migrations" not in path.parts
    }
    modules = set(paths)
    return {name: _imports(path, name, modules) - {name} for name, path in paths.items()}


def test_the_core_has_no_import_cycle() -> None:
    try:
        tuple(TopologicalSorter(_graph()).static_order())
    except CycleError as exc:
        pytest.fail(f"an import cycle in the core: {' → '.join(exc.args[1])}")


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    return None


def test_the_layers_depend_one_way() -> None:
    backwards = [
        f"{module} imports {imported}"
        for module, imports in _graph().items()
        for imported in imports
        if (mine := _layer(module)) is not None
        and (theirs := _layer(imported)) is not None
        and theirs < mine
    ]
    assert backwards == []


def test_the_checks_would_see_a_cycle_and_a_backward_import() -> None:
    with pytest.raises(CycleError):
        tuple(TopologicalSorter({"a": {"b"}, "b": {"a"}}).static_order())
    pipeline = _layer("waimai_bridge.pipeline.apply")
    web = _layer("waimai_bridge.web.app")
    assert pipeline is not None
    assert web is not None
    assert web < pipeline
