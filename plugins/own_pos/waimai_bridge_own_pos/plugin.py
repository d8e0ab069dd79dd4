"""The Own POS (自有收银) plugin: the chain's own POS and ordering channel as a platform.

This is the reference plugin: each hook is a thin function over one module —
:mod:`.push` verifies and decodes pushes (with :mod:`.signing`), :mod:`.states` maps them
to the baseline, :mod:`.prices` reads an order's money; :mod:`.fields` reads the JSON and
names a bad field. The native-code table and the config schemas live in ``manifest.json``.
There is no ``outbound_action``: the POS *is* the chain's own system, so nothing is sent
back to it.
"""

from __future__ import annotations

from typing import Any

from waimai_bridge.plugin_api import (
    InboundRequest,
    NativeEvent,
    ParsedPush,
    PluginConfig,
    PriceBreakdown,
    StateChange,
    hookimpl,
    read_manifest,
)
from waimai_bridge_own_pos import prices, push, states


@hookimpl
def plugin_manifest() -> dict[str, Any]:
    """The Own POS manifest: config schemas and every POS event with its baseline states."""
    return read_manifest(__package__, "waimai-bridge-own-pos")


@hookimpl
def parse_event(request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
    """Verify a POS push (HMAC-SHA256, replay window), resolve its store, decode its event."""
    return push.parse(request, config)


@hookimpl
def map_state(event: NativeEvent) -> StateChange:
    """The baseline state of a POS event, a kitchen step, or a cancel's or refund's money."""
    return states.state_change(event)


@hookimpl
def price_breakdown(order: NativeEvent) -> PriceBreakdown | None:
    """The price breakdown of an ``order.created`` message; None for other events."""
    if order.native_code != prices.ORDER_EVENT:
        return None
    return prices.breakdown(order.payload)
