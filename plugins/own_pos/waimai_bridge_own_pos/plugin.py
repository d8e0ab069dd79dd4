"""The Own POS (自有收银) plugin: the chain's own POS and ordering channel as a platform.

For now it only describes itself; parsing the POS's signed pushes, mapping states and the
kitchen steps come in their own issues. The native-code table (the event names the POS
sends) and the config schemas live in ``manifest.json``.
"""

from typing import Any

from waimai_bridge.plugin_api import hookimpl, read_manifest


@hookimpl
def plugin_manifest() -> dict[str, Any]:
    """The Own POS manifest: config schemas and every POS event with its baseline states."""
    return read_manifest(__package__, "waimai-bridge-own-pos")
