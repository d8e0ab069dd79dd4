"""The Eleme (饿了么) platform plugin: pushes to ``/webhooks/eleme``, calls the nop API.

The hooks are thin: :mod:`.push` verifies and decodes pushes, :mod:`.states` maps them to
the baseline, :mod:`.prices` reads an order's money and :mod:`.details` its day number and
remark, :mod:`.api` calls the platform, :mod:`.pull` brings what it failed to push,
:mod:`.orders` reads an order back and :mod:`.oauth` authorizes stores. The native-code
table and the config schemas live in ``manifest.json``; every fact the research could not
confirm lives in :mod:`.assumptions`.
"""

from __future__ import annotations

from typing import Any

from waimai_bridge.plugin_api import (
    ActionRequest,
    ActionResult,
    AuthorizationRequest,
    AuthorizationStart,
    CodeExchange,
    Confirmed,
    Credentials,
    CredentialsRefresh,
    FetchedOrder,
    InboundRequest,
    NativeEvent,
    OrderDetails,
    OrderRef,
    ParsedPush,
    PluginConfig,
    PriceBreakdown,
    PulledEvents,
    PullReceipt,
    PullRequest,
    StateChange,
    hookimpl,
    read_manifest,
)
from waimai_bridge_eleme import api, details, oauth, orders, prices, push, states
from waimai_bridge_eleme import pull as _pull
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
def order_details(order: NativeEvent) -> OrderDetails | None:
    """The day sequence number and remark of a new-order (type 10) message; None for others."""
    if kind_of(int(order.native_code)) is not Kind.ORDER:
        return None
    return details.details(order.payload)


@hookimpl
def outbound_action(action: ActionRequest, config: PluginConfig) -> ActionResult:
    """Perform an action through the Eleme order API (the ``…Lite`` methods)."""
    return api.perform(action, config)


@hookimpl
def pull_events(pull: PullRequest, config: PluginConfig) -> PulledEvents:
    """The store's messages Eleme failed to push (getPushFailMsg, getNonReachedOMessages)."""
    return _pull.pull(pull, config)


@hookimpl
def confirm_pull(receipt: PullReceipt, config: PluginConfig) -> Confirmed:
    """Confirm a pull's getPushFailMsg messages (confirmPullMsg) once they are stored."""
    return _pull.confirm(receipt, config)


@hookimpl
def fetch_order(order: OrderRef, config: PluginConfig) -> FetchedOrder | None:
    """One order read back with getOrder: its full order and its current state."""
    return orders.fetch(order, config)


@hookimpl
def verify_action(action: ActionRequest, config: PluginConfig) -> ActionResult:
    """Whether an action whose answer was lost took effect, by the order as getOrder has it."""
    return orders.verify(action, config)


@hookimpl
def authorize_url(request: AuthorizationRequest, config: PluginConfig) -> AuthorizationStart:
    """Eleme's authorize page for the store's owner; none for a client-credentials app."""
    return oauth.authorize_url(request, config)


@hookimpl
def exchange_code(exchange: CodeExchange, config: PluginConfig) -> Credentials:
    """The store's tokens for the code of its owner's consent (or the app's own token)."""
    return oauth.exchange_code(exchange, config)


@hookimpl
def refresh_credentials(refresh: CredentialsRefresh, config: PluginConfig) -> Credentials:
    """The store's tokens renewed with its refresh token (or asked for again)."""
    return oauth.refresh_credentials(refresh, config)
