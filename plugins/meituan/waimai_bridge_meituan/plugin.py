"""The Meituan Waimai (美团外卖) platform plugin: one push URL per kind, the waimai open API.

For now it only describes itself; parsing pushes, mapping states, reading prices and the
outbound actions come in their own issues. The native-code table (push kind, plus its
``notify_type`` or ``logistics_status`` where one URL carries several) and the config
schemas live in ``manifest.json``.
"""

from typing import Any

from waimai_bridge.plugin_api import hookimpl, read_manifest


@hookimpl
def plugin_manifest() -> dict[str, Any]:
    """The Meituan manifest: config schemas and every push code with its baseline states."""
    return read_manifest(__package__, "waimai-bridge-meituan")
