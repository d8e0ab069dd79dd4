"""``pullpay``: ``testpay``'s pushes, with a platform of its own in memory that the optional
hooks read: messages it failed to push (``pull_events``, ``confirm_pull``), its orders
(``fetch_order``) and the actions it took (``outbound_action``, ``verify_action``)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests import testpay
from waimai_bridge.plugin_api import (
    ActionOutcome,
    ActionRequest,
    ActionResult,
    Confirmed,
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
    TransientPlatformError,
    hookimpl,
)

NAME = "pullpay"
PAGE = 2
"""Messages one pull brings at most: more says ``more``."""


@dataclass
class PullPay:
    """The plugin, and the platform it talks to."""

    failed: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    """Push bodies the platform failed to send, by shop, until confirmed."""
    orders: dict[str, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    """Every push body of each order, as the platform knows it."""
    pulls: list[PullRequest] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    fetches: list[str] = field(default_factory=list)
    calls: list[ActionRequest] = field(default_factory=list)
    outcome: ActionOutcome = ActionOutcome.DONE
    """What an action call answers."""
    took_effect: bool = True
    """Whether an action call takes effect on the platform, whatever it answered."""
    done: set[tuple[str, str]] = field(default_factory=set)
    down: bool = False
    """The platform answers nothing (every call is a transient failure)."""
    verify_broken: bool = False
    """Reading an order to verify an action raises what no plugin should (a plugin bug)."""

    def push(self, body: bytes, *, delivered: bool) -> None:
        """The platform sends ``body`` (``delivered``) or fails to."""
        message = json.loads(body)
        self.orders[str(message["order"])].append(body)
        if not delivered:
            self.failed[str(message["shop"])].append(body)

    @hookimpl
    def plugin_manifest(self) -> dict[str, Any]:
        return testpay.MANIFEST | {
            "name": NAME,
            "capabilities": [*testpay.MANIFEST["capabilities"], "outbound_action",
                             "pull_events", "confirm_pull", "fetch_order", "verify_action"],
            "actions": ["confirm", "cancel"],
        }  # fmt: skip

    @hookimpl
    def parse_event(self, request: InboundRequest, config: PluginConfig) -> ParsedPush | None:
        parsed = testpay.parse_event(request, config)
        if parsed is None:
            return None
        events = [event.model_copy(update={"platform": NAME}) for event in parsed.events]
        return ParsedPush(reply=parsed.reply, events=events)

    @hookimpl
    def map_state(self, event: NativeEvent) -> StateChange:
        return testpay.map_state(event)

    @hookimpl
    def price_breakdown(self, order: NativeEvent) -> PriceBreakdown | None:
        return testpay.price_breakdown(order)

    @hookimpl
    def order_details(self, order: NativeEvent) -> OrderDetails | None:
        return testpay.order_details(order)

    @hookimpl
    def pull_events(self, pull: PullRequest, config: PluginConfig) -> PulledEvents:
        self._reachable()
        self.pulls.append(pull)
        shop = str(config.stores[pull.store_id]["shop"])
        bodies = self.failed[shop][:PAGE]
        events = [event for body in bodies for event in self._read(body, config)]
        receipt = ",".join(str(json.loads(body)["id"]) for body in bodies) or None
        return PulledEvents(events=events, receipt=receipt, more=len(self.failed[shop]) > PAGE)

    @hookimpl
    def confirm_pull(self, receipt: PullReceipt, config: PluginConfig) -> Confirmed:
        self._reachable()
        ids = receipt.receipt.split(",")
        self.confirmed += ids
        shop = str(config.stores[receipt.store_id]["shop"])
        kept = [body for body in self.failed[shop] if str(json.loads(body)["id"]) not in ids]
        count = len(self.failed[shop]) - len(kept)
        self.failed[shop] = kept
        return Confirmed(count=count)

    @hookimpl
    def fetch_order(self, order: OrderRef, config: PluginConfig) -> FetchedOrder | None:
        self._reachable()
        self.fetches.append(order.platform_order_id)
        bodies = self.orders.get(order.platform_order_id)
        if not bodies:
            return None
        return FetchedOrder(events=[e for body in bodies for e in self._read(body, config)])

    @hookimpl
    def outbound_action(self, action: ActionRequest) -> ActionResult:
        self._reachable()
        self.calls.append(action)
        if self.took_effect:
            self.done.add((action.platform_order_id, action.action.value))
        return ActionResult(outcome=self.outcome, code="X" if self.outcome != "done" else None)

    @hookimpl
    def verify_action(self, action: ActionRequest) -> ActionResult:
        self._reachable()
        if self.verify_broken:
            raise KeyError("orderStatus")
        if (action.platform_order_id, action.action.value) in self.done:
            return ActionResult(outcome=ActionOutcome.DONE, message="the order shows it")
        return ActionResult(outcome=ActionOutcome.TRANSIENT, message="the order does not show it")

    def _reachable(self) -> None:
        if self.down:
            raise TransientPlatformError("the platform does not answer", code="DOWN")

    def _read(self, body: bytes, config: PluginConfig) -> list[NativeEvent]:
        request = InboundRequest(
            method="POST", url="https://bridge.example.com/webhooks/pullpay", kind=None,
            query=[], body=body, received_at_ms=0,
            headers={testpay.SIGNATURE_HEADER: testpay.sign(body, config.settings["secret"])},
        )  # fmt: skip
        parsed = self.parse_event(request, config)
        assert parsed is not None
        return list(parsed.events)
