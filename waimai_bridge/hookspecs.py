"""The hook specifications a platform plugin implements (SPEC §2.1).

A plugin is one object (usually a module) registered under the entry-point group
``waimai_bridge``; the entry point's name is the platform's name. The core calls each hook
only on the plugin of the platform concerned, so an implementation never has to check
``platform`` — it is passed so that one function can serve several registrations.

Every call is checked against the contracts in ``waimai_bridge/contracts/``: the arguments
before the call, the return value after it. A hook may return the model or a plain ``dict``
of the same shape. A value that breaks the contract raises
:class:`~waimai_bridge.errors.ContractViolation` naming the plugin, the hook and the JSON
path of the offending value. An implementation may accept fewer arguments than the spec
lists (pluggy passes only the ones it names).
"""

from __future__ import annotations

import pluggy

from waimai_bridge.authorization import (
    AuthorizationRequest,
    AuthorizationStart,
    CodeExchange,
    Credentials,
    CredentialsRefresh,
)
from waimai_bridge.manifest import Manifest
from waimai_bridge.models import (
    ActionRequest,
    ActionResult,
    InboundRequest,
    NativeEvent,
    OrderDetails,
    ParsedPush,
    PluginConfig,
    PriceBreakdown,
    StateChange,
)
from waimai_bridge.pulled import (
    Confirmed,
    FetchedOrder,
    OrderRef,
    PulledEvents,
    PullReceipt,
    PullRequest,
)

PROJECT_NAME = "waimai_bridge"
"""The pluggy project name, which is also the entry-point group plugins register under."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec(firstresult=True)
def plugin_manifest() -> Manifest:
    """Describe the plugin: its platform name, versions, hooks, actions, config and codes.

    Called once, when the plugin is loaded, before any other hook. Every plugin implements
    it.

    :returns: the plugin's :class:`~waimai_bridge.manifest.Manifest`: ``name`` (equal to the
        entry-point name), ``display_name``, ``version``, ``contract_version`` (its major
        must equal the core's), ``capabilities`` (exactly the other hooks it implements),
        ``actions`` (the outbound actions it supports), ``config_schema`` and
        ``store_config_schema`` (JSON Schemas of its config tables, secrets marked
        ``writeOnly``) and ``native_codes`` (every native code and the baseline states it
        can map to).

    Contract: ``contracts/manifest.schema.json``; the two config schemas must be valid
    JSON Schemas (Draft 2020-12). A manifest that breaks it gets the plugin refused.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def parse_event(platform: str, request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
    """Verify and decode one push from the platform.

    Called by the web receiver for every request to ``/webhooks/{platform}`` and
    ``/webhooks/{platform}/{kind}``, before anything is written. Implemented by plugins
    with the ``parse_event`` capability.

    :param platform: the platform's name, as in the manifest.
    :param request: the raw request: method, public ``url`` (the one the platform signs),
        ``kind``, ``query``, ``headers`` and the raw ``body``.
    :param config: the plugin's validated settings (secrets included) and store bindings;
        ``config.store_for(key, value)`` resolves a platform shop id to the chain's store.
    :returns: a :class:`~waimai_bridge.models.ParsedPush`: the ``reply`` the platform
        expects (also for an empty console probe, which carries no events) and zero or
        more native events, each with the store id (``store_inferred`` when the push names
        no store and the id is a guess), the platform order id (a string), the native
        code, an idempotency key and the platform's own time of the change; or
        ``None`` when the request is not a push of this platform (the receiver answers 404).
    :raises BadSignature: missing or wrong signature or app id (HTTP 401).
    :raises UndecodablePush: a body that cannot be decoded, or a message the platform
        does not send (HTTP 400).
    :raises UnknownStore: a shop no store is bound to (HTTP 400).

    Contract: ``contracts/inbound-request.schema.json`` and
    ``contracts/plugin-config.schema.json`` in, ``contracts/parsed-push.schema.json`` out;
    every ``native_code`` must appear in the manifest's ``native_codes``.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def map_state(platform: str, event: NativeEvent) -> StateChange:
    """Map a native event to the baseline platform state of SPEC §4.1.

    Called by the worker for every native event before it is folded, and again whenever
    the event log is re-folded, so it must be a pure function of the event. Implemented
    by plugins with the ``map_state`` capability, as a lookup in the manifest's
    ``native_codes`` table plus whatever the payload decides (a partial refund, a cancel
    before or after acceptance).

    :param platform: the platform's name.
    :param event: a native event that ``parse_event`` returned.
    :returns: a :class:`~waimai_bridge.models.StateChange`: the baseline ``state`` (or
        ``None``: kept in the log, ignored by the state machine), and for cancel and refund
        events ``partial``, ``refund_amount_fen``, ``refunded_items`` and ``reason``.

    Contract: ``contracts/native-event.schema.json`` in,
    ``contracts/state-change.schema.json`` out; ``state`` must be one of the ``maps_to``
    states the manifest declares for the event's native code.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def price_breakdown(
    platform: str, order: NativeEvent, config: PluginConfig
) -> PriceBreakdown | None:
    """Read the canonical price breakdown (SPEC §6) out of an order payload.

    Called by the worker when it stores an order, with the native event that carries the
    full order (a new-order push or a fetched order). Implemented by plugins with the
    ``price_breakdown`` capability.

    :param platform: the platform's name.
    :param order: the native event whose payload holds the order.
    :param config: the plugin's settings (e.g. what the platform's ``price`` means for the
        store's subscription).
    :returns: a :class:`~waimai_bridge.models.PriceBreakdown`, every amount in fen, the
        figures the platform states (user paid, merchant income) taken as stated, never
        recomputed; or ``None`` when the payload carries no prices.

    Contract: ``contracts/native-event.schema.json`` and
    ``contracts/plugin-config.schema.json`` in, ``contracts/price-breakdown.schema.json``
    out.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def order_details(platform: str, order: NativeEvent, config: PluginConfig) -> OrderDetails | None:
    """Read what an order shows a store's staff beyond its price out of an order payload.

    Called by the worker for every native event it applies, beside ``price_breakdown``;
    the latest details an order's events gave are kept with the order. Implemented by
    plugins with the ``order_details`` capability (optional, contract 1.5).

    :param platform: the platform's name.
    :param order: the native event whose payload may hold the order.
    :param config: the plugin's settings and store bindings.
    :returns: an :class:`~waimai_bridge.models.OrderDetails`: the platform's day sequence
        number of the order (``day_seq``) and the customer's remark (``remark``, at most
        500 characters: a plugin shortens a longer one), each null when the payload does
        not state it; or ``None`` when the payload carries no order.

    Contract: ``contracts/native-event.schema.json`` and
    ``contracts/plugin-config.schema.json`` in, ``contracts/order-details.schema.json``
    out.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def outbound_action(platform: str, action: ActionRequest, config: PluginConfig) -> ActionResult:
    """Perform an action of the chain's own system on the platform's API.

    Called by the action worker, once per attempt, for actions the manifest lists.
    Implemented by plugins with the ``outbound_action`` capability; the request is signed
    as the platform requires.

    :param platform: the platform's name.
    :param action: the action, the platform order id, the store, an optional reason and
        the attempt number.
    :param config: the plugin's settings (API root, keys) and the store's binding (token).
    :returns: an :class:`~waimai_bridge.models.ActionResult`: ``done``, ``rejected`` (for
        good, with the platform's code and message), ``transient`` (to be retried) or
        ``unknown`` (the call may have taken effect and nothing tells: settled by
        ``verify_action`` where the plugin has it, else retried).
        Raising :class:`~waimai_bridge.errors.TransientPlatformError` or
        :class:`~waimai_bridge.errors.PlatformRejected` means the same as returning the
        matching result.

    Contract: ``contracts/action-request.schema.json`` and
    ``contracts/plugin-config.schema.json`` in, ``contracts/action-result.schema.json``
    out.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def pull_events(platform: str, pull: PullRequest, config: PluginConfig) -> PulledEvents:
    """Ask the platform for a store's messages it failed to push (the pull side of 推拉结合).

    Called by the workers every ``[bridge].pull_interval_seconds`` for each store bound to
    the platform, one worker at a time, and by ``waimai-bridge pull``. The events go into
    the inbox as pushed ones do. Implemented by plugins with the ``pull_events``
    capability (optional).

    :param platform: the platform's name.
    :param pull: the store and ``since_ms``, where the last successful pull started (less
        an overlap; 0 the first time).
    :param config: the plugin's settings and store bindings.
    :returns: a :class:`~waimai_bridge.models.PulledEvents`: native events carrying the
        idempotency keys a push of the same message would have (so a pull and a late push
        apply once), a ``receipt`` for ``confirm_pull`` where the platform wants pulled
        messages confirmed, and ``more`` when it holds more than one pull takes.
    :raises TransientPlatformError: the platform cannot be reached or asks to wait; the
        pull is tried again at the next interval.

    Contract: ``contracts/pull-request.schema.json`` and
    ``contracts/plugin-config.schema.json`` in, ``contracts/pulled-events.schema.json``
    out; every ``native_code`` must appear in the manifest's ``native_codes``.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def confirm_pull(platform: str, receipt: PullReceipt, config: PluginConfig) -> Confirmed:
    """Tell the platform that a pull's messages are stored, so it stops offering them.

    Called after the events of a ``pull_events`` answer with a ``receipt`` are committed to
    the inbox; never before, so a crash between the two only makes the next pull bring
    them again (and the idempotency keys drop them). Implemented by plugins with the
    ``confirm_pull`` capability (optional; only beside ``pull_events``).

    :param platform: the platform's name.
    :param receipt: the store and the ``receipt`` the pull returned.
    :param config: the plugin's settings and store bindings.
    :returns: a :class:`~waimai_bridge.models.Confirmed`: how many messages the platform
        took as confirmed.
    :raises TransientPlatformError: not confirmed this time; the next pull brings the
        messages again.

    Contract: ``contracts/pull-receipt.schema.json`` and
    ``contracts/plugin-config.schema.json`` in, ``contracts/confirmed.schema.json`` out.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def fetch_order(platform: str, order: OrderRef, config: PluginConfig) -> FetchedOrder | None:
    """Read one order as the platform has it now.

    Called by the workers for an order first seen without its full order (a lost
    new-order push: its items and prices are missing) and for a stored order stuck in a
    non-final state past ``[bridge].refetch_after_minutes``; the events go into the inbox
    as pushed ones do. Also what a plugin's ``verify_action`` usually reads. Implemented by
    plugins with the ``fetch_order`` capability (optional).

    :param platform: the platform's name.
    :param order: the store and the platform order id.
    :param config: the plugin's settings and store bindings.
    :returns: a :class:`~waimai_bridge.models.FetchedOrder`: the order's full payload as
        the native event ``price_breakdown`` reads, and its current state as native events,
        with the idempotency keys a push of the same message would have wherever the
        platform's messages allow it; or ``None`` when the platform does not know the order.
    :raises TransientPlatformError: the platform cannot be reached; tried again later.

    Contract: ``contracts/order-ref.schema.json`` and ``contracts/plugin-config.schema.json``
    in, ``contracts/fetched-order.schema.json`` out; every ``native_code`` must appear in
    the manifest's ``native_codes``.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def verify_action(platform: str, action: ActionRequest, config: PluginConfig) -> ActionResult:
    """Settle an action whose outcome nobody knows by reading the order on the platform.

    Called by the action worker when ``outbound_action`` answered ``unknown`` (the call
    may have reached the platform: a time-out after the request was sent, a reset
    connection), before the action is retried or failed. Implemented by plugins with the
    ``verify_action`` capability (optional); without it an ``unknown`` is retried as
    ``transient``.

    :param platform: the platform's name.
    :param action: the action as it was sent.
    :param config: the plugin's settings and store bindings.
    :returns: an :class:`~waimai_bridge.models.ActionResult`: ``done`` when the order on the
        platform shows the action took effect, ``transient`` when it shows it did not (the
        core calls ``outbound_action`` again), ``rejected`` when the action can no longer
        take effect (the order moved on), ``unknown`` when reading failed too.

    Contract: ``contracts/action-request.schema.json`` and
    ``contracts/plugin-config.schema.json`` in, ``contracts/action-result.schema.json``
    out.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def authorize_url(
    platform: str, request: AuthorizationRequest, config: PluginConfig
) -> AuthorizationStart:
    """Where a store's owner gives the chain's app their consent to act for the store.

    Called by ``waimai-bridge auth url`` with a fresh single-use ``state`` the bridge keeps
    for that store. Implemented by plugins with the ``authorize_url`` capability (optional,
    contract 1.6; together with ``exchange_code`` and ``refresh_credentials``).

    :param platform: the platform's name.
    :param request: the store, the ``state`` the platform must hand back to the callback,
        and the ``redirect_uri`` (the bridge's ``/oauth/{platform}/callback``).
    :param config: the plugin's settings (app key, which grant the app uses) and bindings.
    :returns: an :class:`~waimai_bridge.authorization.AuthorizationStart`: the platform's
        authorization page, or no URL for an app that needs nobody's consent (a
        client-credentials grant), which the core then completes at once through
        ``exchange_code`` with no code.

    Contract: ``contracts/authorization-request.schema.json`` and
    ``contracts/plugin-config.schema.json`` in, ``contracts/authorization-start.schema.json``
    out.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def exchange_code(platform: str, exchange: CodeExchange, config: PluginConfig) -> Credentials:
    """Exchange the code the platform gave the callback for a store's credentials.

    Called by ``GET /oauth/{platform}/callback`` once the ``state`` is found to be one the
    bridge issued for the store and not used yet, and by ``waimai-bridge auth url`` with no
    code for an app that needs nobody's consent. Implemented by plugins with the
    ``exchange_code`` capability (optional, contract 1.6).

    :param platform: the platform's name.
    :param exchange: the store, the ``code`` (or None) and the ``redirect_uri``.
    :param config: the plugin's settings (app key and secret) and bindings.
    :returns: the store's :class:`~waimai_bridge.authorization.Credentials`: the access
        token, a refresh token where the platform gives one, the expiry, the scope.
    :raises PlatformRejected: the platform refused the code (used, expired, not this app's).
    :raises TransientPlatformError: the platform cannot be reached.

    Contract: ``contracts/code-exchange.schema.json`` and
    ``contracts/plugin-config.schema.json`` in, ``contracts/credentials.schema.json`` out.
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def refresh_credentials(
    platform: str, refresh: CredentialsRefresh, config: PluginConfig
) -> Credentials:
    """Renew a store's credentials before they expire.

    Called by the workers, one at a time, for credentials that expire within
    ``[authorization] refresh_ahead_minutes``, and by ``waimai-bridge auth refresh``.
    Implemented by plugins with the ``refresh_credentials`` capability (optional, contract
    1.6).

    :param platform: the platform's name.
    :param refresh: the store and its current credentials (refresh token included).
    :param config: the plugin's settings and bindings.
    :returns: the store's new :class:`~waimai_bridge.authorization.Credentials` (a
        platform that does not rotate refresh tokens may give the same one back).
    :raises PlatformRejected: the platform refused for good (the store withdrew its
        consent, the refresh token expired): the store's channel becomes unauthorized
        until it is authorized again.
    :raises TransientPlatformError: the platform cannot be reached; retried with backoff.

    Contract: ``contracts/credentials-refresh.schema.json`` and
    ``contracts/plugin-config.schema.json`` in, ``contracts/credentials.schema.json`` out.
    """
    raise NotImplementedError


__all__ = [
    "PROJECT_NAME",
    "authorize_url",
    "confirm_pull",
    "exchange_code",
    "fetch_order",
    "hookimpl",
    "hookspec",
    "map_state",
    "order_details",
    "outbound_action",
    "parse_event",
    "plugin_manifest",
    "price_breakdown",
    "pull_events",
    "refresh_credentials",
    "verify_action",
]
