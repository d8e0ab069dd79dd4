"""The Eleme (饿了么) platform plugin: pushes to ``/webhooks/eleme``, calls the nop API.

For now it only describes itself; parsing pushes, mapping states, reading prices and the
outbound actions come in their own issues. The native-code table (every push ``type`` of
the Eleme shop open platform) and the config schemas live in ``manifest.json``.
"""

from typing import Any

from waimai_bridge.plugin_api import hookimpl, read_manifest


@hookimpl
def plugin_manifest() -> dict[str, Any]:
    """The Eleme manifest: config schemas and every push ``type`` with its baseline states."""
    return read_manifest(__package__, "waimai-bridge-eleme")
