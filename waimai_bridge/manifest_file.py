"""Reading a plugin's manifest from a JSON data file shipped in the plugin package."""

from __future__ import annotations

import json
from importlib import metadata, resources
from typing import Any


def read_manifest(
    package: str, distribution: str, filename: str = "manifest.json"
) -> dict[str, Any]:
    """The manifest stored as ``filename`` in ``package``, its ``version`` the distribution's.

    Keeping the manifest as data lets the native-code table be read and reviewed as a
    table; taking the version from the installed distribution keeps the two from drifting.
    """
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    manifest: dict[str, Any] = json.loads(text)
    manifest["version"] = metadata.version(distribution)
    return manifest
