"""``waimai-bridge new-plugin NAME``: a plugin package that passes the structural suites as
generated, and whose hooks, fake and fixtures fail with a message saying what to fill in.

The files are the templates in ``templates/`` (data, not code): every ``*.tmpl`` file is
copied with ``{{name}}``, ``{{package}}``, ``{{distribution}}``, ``{{display_name}}``,
``{{class_name}}`` and ``{{contract_version}}`` replaced, in its path too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from waimai_bridge.models import CONTRACT_VERSION

NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
"""A platform name, as the manifest schema allows it."""

SUFFIX = ".tmpl"


class ScaffoldError(ValueError):
    """The plugin cannot be scaffolded (bad name, folder not empty)."""


def placeholders(name: str, display_name: str | None = None) -> dict[str, str]:
    """What each placeholder of the templates becomes for the platform ``name``."""
    if not NAME.match(name):
        raise ScaffoldError(
            f"{name!r} is not a platform name: lower-case letters, digits and _, starting "
            "with a letter, at most 32 characters (e.g. demo_platform)"
        )
    words = name.split("_")
    return {
        "name": name,
        "package": f"waimai_bridge_{name}",
        "distribution": "waimai-bridge-" + "-".join(words),
        "display_name": display_name or " ".join(word.capitalize() for word in words),
        "class_name": "".join(word.capitalize() for word in words),
        "contract_version": CONTRACT_VERSION,
    }


def _filled(text: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def _templates(folder: Traversable, prefix: str = "") -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    for entry in sorted(folder.iterdir(), key=lambda entry: entry.name):
        if entry.is_dir():
            found += _templates(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(SUFFIX):
            found.append((prefix + entry.name.removesuffix(SUFFIX), entry))
    return found


def scaffold(name: str, directory: Path, display_name: str | None = None) -> list[Path]:
    """Write the plugin package for ``name`` into ``directory`` (new or empty); return the
    files written."""
    values = placeholders(name, display_name)
    if directory.exists() and any(directory.iterdir()):
        raise ScaffoldError(f"{directory} exists and is not empty")
    written: list[Path] = []
    for relative, template in _templates(resources.files(__package__) / "templates"):
        target = directory / _filled(relative, values)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_filled(template.read_text(encoding="utf-8"), values), encoding="utf-8")
        written.append(target)
    return written
