"""The Eleme (饿了么) platform plugin: pushes to ``/webhooks/eleme``, calls the nop API.

The hooks are thin: :mod:`.push` verifies and decodes pushes, :mod:`.states` maps them to
the baseline, :mod:`.prices` reads an order's money, :mod:`.api` calls the platform. The
native-code table and the config schemas live in ``manifest.json``; every fact the
research could not confirm lives in :mod:`.assumptions`.
"""

from __future__ import annotations

from typing import Any

from waimai_bridge.plugin_api import (
    ActionRequest,
    ActionResult,
    InboundRequest,
    NativeEvent,
    ParsedPush,
    PluginConfig,
    PriceBreakdown,
    StateChange,
    hookimpl,
    read_manifest,
)
from waimai_bridge_eleme import api, prices, push, states
from waimai_bridge_eleme.messages import Kind, kind_of


@hookimpl
def plugin_manifest() -> dict[str, Any]:
    """The Eleme manifest: config schemas and every push ``type`` with its baseline states."""
    return read_manifest(__package__, "waimai-bridge-eleme")


@hookimpl
def parse_event(request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
    """Verify an Eleme push (MD5 signature, app id, shop) and decode its message."""
    return push.parse(request, config)


@hookimpl
def map_state(event: NativeEvent) -> StateChange:
    """The baseline state of an Eleme push type, with a cancel's or refund's money."""
    return states.state_change(event)


@hookimpl
def price_breakdown(order: NativeEvent) -> PriceBreakdown | None:
    """The price breakdown of a new-order (type 10) message; None for other messages."""
    if kind_of(int(order.native_code)) is not Kind.ORDER:
        return None
    return prices.breakdown(order.payload)


@hookimpl
def outbound_action(action: ActionRequest, config: PluginConfig) -> ActionResult:
    """Perform an action through the Eleme order API (the ``…Lite`` methods)."""
    return api.perform(action, config)
