"""Calling one platform's hooks with their contracts checked on the way in and out.

pluggy checks only argument names; here every argument and every return value is checked
against its contract (:data:`HOOK_CONTRACTS`), and a value that breaks one raises
:class:`~waimai_bridge.errors.ContractViolation` naming the plugin, the hook and the JSON
path of the offending value. An argument object is checked once: models are frozen, so
the object that passed (the config, an event given to two hooks) is given again as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import pluggy

from waimai_bridge.authorization import (
    AuthorizationRequest,
    AuthorizationStart,
    CodeExchange,
    Credentials,
    CredentialsRefresh,
)
from waimai_bridge.errors import ContractViolation, PlatformRejected, TransientPlatformError
from waimai_bridge.manifest import Manifest
from waimai_bridge.models import (
    ActionOutcome,
    ActionRequest,
    ActionResult,
    Capability,
    ContractModel,
    Event,
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
from waimai_bridge.validation import ContractProblem, conform

R = TypeVar("R", bound=ContractModel)


@dataclass(frozen=True)
class HookContract(Generic[R]):
    """What a hook takes (argument name → model) and returns; ``optional``: may be None."""

    arguments: Mapping[str, type[ContractModel]]
    returns: type[R]
    optional: bool = False


HOOK_CONTRACTS: Mapping[str, HookContract[Any]] = {
    "plugin_manifest": HookContract({}, Manifest),
    "parse_event": HookContract(
        {"request": InboundRequest, "config": PluginConfig}, ParsedPush, optional=True
    ),
    "map_state": HookContract({"event": NativeEvent}, StateChange),
    "price_breakdown": HookContract(
        {"order": NativeEvent, "config": PluginConfig}, PriceBreakdown, optional=True
    ),
    "order_details": HookContract(
        {"order": NativeEvent, "config": PluginConfig}, OrderDetails, optional=True
    ),
    "outbound_action": HookContract(
        {"action": ActionRequest, "config": PluginConfig}, ActionResult
    ),
    "pull_events": HookContract({"pull": PullRequest, "config": PluginConfig}, PulledEvents),
    "confirm_pull": HookContract({"receipt": PullReceipt, "config": PluginConfig}, Confirmed),
    "fetch_order": HookContract(
        {"order": OrderRef, "config": PluginConfig}, FetchedOrder, optional=True
    ),
    "verify_action": HookContract({"action": ActionRequest, "config": PluginConfig}, ActionResult),
    "authorize_url": HookContract(
        {"request": AuthorizationRequest, "config": PluginConfig}, AuthorizationStart
    ),
    "exchange_code": HookContract({"exchange": CodeExchange, "config": PluginConfig}, Credentials),
    "refresh_credentials": HookContract(
        {"refresh": CredentialsRefresh, "config": PluginConfig}, Credentials
    ),
}
"""Every hook spec and its contract; a test keeps this in step with the hook specs."""


def call_checked(
    plugin: str,
    hooks: pluggy.HookRelay,
    hook: str,
    *,
    reference: bool = False,
    passed: dict[type[ContractModel], object] | None = None,
    **arguments: Any,
) -> Any:
    """Call ``hook`` with ``platform=plugin`` and the arguments, checking both ways.

    ``passed`` remembers, per model, the argument that last passed its check: the very
    same (frozen) object is not checked again, such as the config on every call, or one
    event given to two hooks. Returns the checked model, or None where the hook may
    answer None.
    """
    contract = HOOK_CONTRACTS[hook]
    checked_arguments: dict[str, Any] = {}
    for name, model in contract.arguments.items():
        value = arguments[name]
        if passed is not None and passed.get(model) is value:
            checked_arguments[name] = value
            continue
        try:
            checked_arguments[name] = conform(model, value, reference=reference, own=True)
        except ContractProblem as exc:
            raise ContractViolation(
                plugin, hook, f"argument {name}: {exc.path}", exc.problem
            ) from None
        if passed is not None:
            passed[model] = value
    caller = getattr(hooks, hook)
    if hook != "plugin_manifest":
        checked_arguments["platform"] = plugin
    result = caller(**checked_arguments)
    if result is None:
        if contract.optional:
            return None
        raise ContractViolation(plugin, hook, "$", f"returned nothing; {hook} must return a result")
    try:
        return conform(contract.returns, result, reference=reference)
    except ContractProblem as exc:
        raise ContractViolation(plugin, hook, exc.path, exc.problem) from None


class Platform:
    """A loaded plugin whose manifest was accepted: its hooks, called with contracts checked."""

    def __init__(
        self, manifest: Manifest, plugin_manager: pluggy.PluginManager, *, reference: bool = False
    ) -> None:
        self.manifest = manifest
        self.name = manifest.name
        self._hooks = plugin_manager.hook
        self._reference = reference
        self._maps_to = {row.code: set(row.maps_to) for row in manifest.native_codes}
        self._passed: dict[type[ContractModel], object] = {}

    def __repr__(self) -> str:
        return f"<Platform {self.name} {self.manifest.version}>"

    def supports(self, capability: Capability) -> bool:
        """Whether the plugin implements the hook of ``capability``."""
        return capability in self.manifest.capabilities

    def _call(self, hook: str, **arguments: Any) -> Any:
        if not self.supports(Capability(hook)):
            raise NotImplementedError(f"plugin {self.name!r} does not implement {hook}")
        return call_checked(
            self.name, self._hooks, hook, reference=self._reference, passed=self._passed,
            **arguments,
        )  # fmt: skip

    def parse_event(self, request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
        """The plugin's reading of a push; every event's native code is in the manifest."""
        parsed: ParsedPush | None = self._call("parse_event", request=request, config=config)
        if parsed is not None:
            self._check_events("parse_event", parsed.events)
        return parsed

    def pull_events(self, pull: PullRequest, config: PluginConfig) -> PulledEvents:
        """A store's messages the platform failed to push, as native events."""
        pulled: PulledEvents = self._call("pull_events", pull=pull, config=config)
        self._check_events("pull_events", pulled.events, store_id=pull.store_id)
        return pulled

    def confirm_pull(self, receipt: PullReceipt, config: PluginConfig) -> Confirmed:
        """Confirm a pull's messages to the platform, once they are stored."""
        confirmed: Confirmed = self._call("confirm_pull", receipt=receipt, config=config)
        return confirmed

    def fetch_order(self, order: OrderRef, config: PluginConfig) -> FetchedOrder | None:
        """One order as the platform has it now, as native events; None if it knows none."""
        fetched: FetchedOrder | None = self._call("fetch_order", order=order, config=config)
        if fetched is not None:
            self._check_events("fetch_order", fetched.events, store_id=order.store_id)
            for index, event in enumerate(fetched.events):
                if event.platform_order_id != order.platform_order_id:
                    raise ContractViolation(
                        self.name, "fetch_order", f"$.events[{index}].platform_order_id",
                        f"{event.platform_order_id!r} is not the order asked for",
                    )  # fmt: skip
        return fetched

    def verify_action(self, action: ActionRequest, config: PluginConfig) -> ActionResult:
        """What the platform's order says of an action whose outcome was unknown."""
        try:
            result: ActionResult = self._call("verify_action", action=action, config=config)
        except TransientPlatformError as exc:
            return ActionResult(outcome=ActionOutcome.UNKNOWN, code=exc.code, message=exc.message)
        except PlatformRejected as exc:
            return ActionResult(outcome=ActionOutcome.REJECTED, code=exc.code, message=exc.message)
        return result

    def _check_events(
        self, hook: str, events: list[NativeEvent], *, store_id: str | None = None
    ) -> None:
        """Every event is this platform's, of a native code in the manifest (and of the
        store asked for)."""
        for index, event in enumerate(events):
            where = f"$.events[{index}]"
            if event.platform != self.name:
                raise ContractViolation(
                    self.name, hook, f"{where}.platform",
                    f"{event.platform!r} is not this plugin's platform {self.name!r}",
                )  # fmt: skip
            if event.native_code not in self._maps_to:
                raise ContractViolation(
                    self.name, hook, f"{where}.native_code",
                    f"{event.native_code!r} is not in the manifest's native_codes",
                )  # fmt: skip
            if store_id is not None and event.store_id != store_id:
                raise ContractViolation(
                    self.name, hook, f"{where}.store_id",
                    f"{event.store_id!r} is not the store asked for",
                )  # fmt: skip

    def map_state(self, event: NativeEvent) -> StateChange:
        """The baseline state of a native event, one the manifest declares for its code."""
        change: StateChange = self._call("map_state", event=event)
        allowed = self._maps_to.get(event.native_code)
        if allowed is None:
            raise ContractViolation(
                self.name,
                "map_state",
                "argument event: $.native_code",
                f"{event.native_code!r} is not in the manifest's native_codes",
            )
        if change.state is not None and change.state not in allowed:
            declared = ", ".join(str(int(state)) for state in sorted(allowed)) or "none"
            raise ContractViolation(
                self.name,
                "map_state",
                "$.state",
                f"{int(change.state)} is not among the states the manifest declares for "
                f"native code {event.native_code!r} ({declared})",
            )
        return change

    def event(self, native: NativeEvent) -> Event:
        """The canonical event of a native event."""
        return Event.of(native, self.map_state(native))

    def price_breakdown(self, order: NativeEvent, config: PluginConfig) -> PriceBreakdown | None:
        """The price breakdown of an order payload, or None when it carries no prices."""
        result: PriceBreakdown | None = self._call("price_breakdown", order=order, config=config)
        return result

    def order_details(self, order: NativeEvent, config: PluginConfig) -> OrderDetails | None:
        """The day sequence number and remark of an order payload, or None when it carries
        no order."""
        result: OrderDetails | None = self._call("order_details", order=order, config=config)
        return result

    def outbound_action(self, action: ActionRequest, config: PluginConfig) -> ActionResult:
        """Perform an action on the platform; platform errors become results."""
        try:
            result: ActionResult = self._call("outbound_action", action=action, config=config)
        except TransientPlatformError as exc:
            return ActionResult(outcome=ActionOutcome.TRANSIENT, code=exc.code, message=exc.message)
        except PlatformRejected as exc:
            return ActionResult(outcome=ActionOutcome.REJECTED, code=exc.code, message=exc.message)
        return result

    def authorize_url(
        self, request: AuthorizationRequest, config: PluginConfig
    ) -> AuthorizationStart:
        """Where the store's owner authorizes the app (no URL: no consent needed)."""
        start: AuthorizationStart = self._call("authorize_url", request=request, config=config)
        return start

    def exchange_code(self, exchange: CodeExchange, config: PluginConfig) -> Credentials:
        """A store's credentials for the code its authorization gave (raises the plugin's
        :class:`~waimai_bridge.errors.PlatformError`)."""
        credentials: Credentials = self._call("exchange_code", exchange=exchange, config=config)
        return credentials

    def refresh_credentials(self, refresh: CredentialsRefresh, config: PluginConfig) -> Credentials:
        """A store's renewed credentials (raises the plugin's
        :class:`~waimai_bridge.errors.PlatformError`: rejected for good, or transient)."""
        credentials: Credentials = self._call("refresh_credentials", refresh=refresh, config=config)
        return credentials
