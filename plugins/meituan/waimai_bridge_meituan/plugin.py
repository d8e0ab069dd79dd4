"""The Meituan Waimai (美团外卖) platform plugin: one push URL per kind, the waimai open API.

The hooks delegate to the modules that do the work: :mod:`.push` (verifying and decoding
pushes), :mod:`.states` (the native codes into the baseline, as a table), :mod:`.prices`
(the price breakdown), :mod:`.details` (the day sequence number and remark), :mod:`.api`
(the outbound actions), :mod:`.fetch` (an order read from the API as native events) and
:mod:`.verify` (an action whose answer was lost, settled by reading the order) and
:mod:`.oauth` (an ISV app's store authorization). The
native-code table (push kind, plus its ``notify_type`` or ``logistics_status`` where one URL
carries several) and the config schemas live in ``manifest.json``; every unconfirmed platform
fact the plugin uses is in :mod:`.assumptions`.
"""

from typing import Any

from waimai_bridge.plugin_api import (
    ActionRequest,
    ActionResult,
    AuthorizationRequest,
    AuthorizationStart,
    CodeExchange,
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
    StateChange,
    hookimpl,
    read_manifest,
)
from waimai_bridge_meituan import api, details, fetch, oauth, prices, push, states, verify


@hookimpl
def plugin_manifest() -> dict[str, Any]:
    """The Meituan manifest: config schemas and every push code with its baseline states."""
    return read_manifest(__package__, "waimai-bridge-meituan")


@hookimpl
def parse_event(request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
    """Verify and decode a push to ``/webhooks/meituan/{kind}`` (POST form or GET query):
    ``{"data":"ok"}`` and its event, ``{"data":"ok"}`` alone for an empty URL check, or
    None for a kind Meituan does not push."""
    return push.parse_push(request, config)


@hookimpl
def map_state(event: NativeEvent) -> StateChange:
    """The baseline state of a Meituan event, from the table in :mod:`.states`."""
    return states.map_event(event)


@hookimpl
def price_breakdown(order: NativeEvent, config: PluginConfig) -> PriceBreakdown | None:
    """The price breakdown of an order push in fen; None for a push without an order."""
    return prices.breakdown(order, config)


@hookimpl
def order_details(order: NativeEvent) -> OrderDetails | None:
    """The day sequence number and remark of an order push; None for a push without an order."""
    return details.details(order.payload)


@hookimpl
def outbound_action(action: ActionRequest, config: PluginConfig) -> ActionResult:
    """Perform an action on the Meituan API, signed; done, rejected, transient, or unknown
    when the answer was lost after the request was sent."""
    return api.perform(action, config)


@hookimpl
def fetch_order(order: OrderRef, config: PluginConfig) -> FetchedOrder | None:
    """Read an order (``order/viewstatus``, ``order/getOrderDetail``): its full order and
    current status as the native events of their pushes; None for an order Meituan does not
    know."""
    return fetch.fetch(order, config)


@hookimpl
def verify_action(action: ActionRequest, config: PluginConfig) -> ActionResult:
    """Read the order (its status, or its latest refund application) to say whether an
    action whose answer was lost took effect."""
    return verify.verify(action, config)


@hookimpl
def authorize_url(request: AuthorizationRequest, config: PluginConfig) -> AuthorizationStart:
    """An ISV app's consent page for the store's owner (none for the ``direct`` grant); a
    developer app is refused: it authorizes no store."""
    return oauth.authorize_url(request, config)


@hookimpl
def exchange_code(exchange: CodeExchange, config: PluginConfig) -> Credentials:
    """The store's access and refresh tokens for the code of its owner's consent (or, for
    the ``direct`` grant, asked for at once)."""
    return oauth.exchange_code(exchange, config)


@hookimpl
def refresh_credentials(refresh: CredentialsRefresh, config: PluginConfig) -> Credentials:
    """The store's tokens renewed with its refresh token."""
    return oauth.refresh_credentials(refresh, config)
