"""Every distribution of the repository declares the distributions its code imports."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = {
    ".": ["waimai_bridge"],
    "plugins/eleme": ["waimai_bridge_eleme"],
    "plugins/meituan": ["waimai_bridge_meituan"],
    "plugins/own_pos": ["waimai_bridge_own_pos"],
    "examples/waimai-bridge-jsonhmac": ["waimai_bridge_jsonhmac"],
}
"""Each distribution's directory, and the packages its wheel ships."""
OWN = {
    package: name
    for name, packages in {
        "waimai-bridge": ["waimai_bridge"],
        "waimai-bridge-eleme": ["waimai_bridge_eleme"],
        "waimai-bridge-meituan": ["waimai_bridge_meituan"],
        "waimai-bridge-own-pos": ["waimai_bridge_own_pos"],
        "waimai-bridge-jsonhmac": ["waimai_bridge_jsonhmac"],
    }.items()
    for package in packages
}
"""The repository's own packages, by the distribution that ships each (editable installs
do not tell ``packages_distributions``)."""
LOADED_BY_PYTEST = {"waimai_bridge/harness/pytest_plugin.py"}
"""Modules only pytest loads (through the ``pytest11`` entry point): pytest is there."""


def _imported(package: Path, root: Path) -> set[str]:
    """The top-level names of what the modules of ``package`` import (absolute imports)."""
    names: set[str] = set()
    for path in package.rglob("*.py"):
        if path.relative_to(root).as_posix() in LOADED_BY_PYTEST:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("directory", sorted(DISTRIBUTIONS))
def test_a_distribution_declares_what_it_imports(directory: str) -> None:
    root = ROOT / directory
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {canonicalize_name(Requirement(line).name) for line in project["dependencies"]}
    own = {canonicalize_name(project["name"])}
    providers = packages_distributions()
    missing: dict[str, set[str]] = {}
    for package in DISTRIBUTIONS[directory]:
        for name in _imported(root / package, root):
            if name in sys.stdlib_module_names or name == "__future__":
                continue
            if name in DISTRIBUTIONS[directory]:
                continue
            dists = {canonicalize_name(dist) for dist in providers.get(name, [])}
            if name in OWN:
                dists = {canonicalize_name(OWN[name])}
            assert dists, f"{package} imports {name}, which no installed distribution provides"
            if not dists & (declared | own):
                missing.setdefault(name, set()).update(dists)
    assert not missing, f"{project['name']} imports but does not declare: {missing}"
