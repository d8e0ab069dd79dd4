"""The soak's orders: the installed demo channels' lunch orders, each push built and signed
once (a redelivery resends the same bytes), the events it carries, and where the order ends.

The orders come from every plugin's demo channel (``waimai_bridge.demo.channel``), which
knows its platform's lifecycles and their expected final states; the soak knows no platform.
Each order's pushes carry platform times a minute apart in lifecycle order, so the order they
are *sent* in may differ (the fold goes by platform time): a share of orders has two of its
service steps sent swapped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from waimai_bridge.config import Config
from waimai_bridge.demo.channel import DemoChannel, DemoOrder, DemoPush
from waimai_bridge.models import InboundRequest
from waimai_bridge.plugins import PluginRegistry

STEP_MS = 60_000
"""Platform time between two steps of an order."""
SWAPPED_SHARE = 0.3
"""The share of orders with two adjacent service steps sent in the wrong order."""


@dataclass(frozen=True)
class Push:
    """One signed push, as the platform sends it (and resends it, byte for byte)."""

    platform: str
    platform_order_id: str
    step: str
    method: str
    path: str
    body: bytes
    headers: Mapping[str, str]
    keys: tuple[str, ...]
    """The idempotency keys of the events it carries, as the plugin reads them."""


@dataclass(frozen=True)
class ActionPlan:
    """An action the chain asks through the API once the order's service steps are in,
    and the pushes the platform sends once it is done."""

    action: str
    reason: str | None
    then: tuple[Push, ...]


@dataclass(frozen=True)
class OrderPlan:
    """One order: its pushes in sending order, its action, and where it must end (None:
    never stored)."""

    platform: str
    platform_order_id: str
    store_id: str
    story: str
    placing: tuple[Push, ...]
    service: tuple[Push, ...]
    action: ActionPlan | None
    expected_state: str | None
    confirm: bool
    """Whether the chain confirms the order through the API once its first push is in (and
    the platform pushes the next step only once that is done)."""

    @property
    def pushes(self) -> tuple[Push, ...]:
        """Every push of the order, the action's included."""
        return (*self.placing, *self.service, *(self.action.then if self.action else ()))


class Planner:
    """Builds rounds of orders: each round, every channel's lunch at every store."""

    def __init__(
        self,
        channels: Sequence[DemoChannel],
        stores: Sequence[str],
        config: Config,
        registry: PluginRegistry,
        *,
        orders_per_store: int,
        seed: int,
        confirming: frozenset[str],
    ) -> None:
        """``confirming``: the platforms whose orders the chain confirms through the API."""
        self.channels = channels
        self.confirming = confirming
        self.stores = stores
        self.config = config
        self.registry = registry
        self.orders_per_store = orders_per_store
        self.rng = random.Random(seed)
        self.run = int(time.time())
        self.start_ms = (self.run - 6 * 3600) * 1000
        """Platform time of the first order: a lunch a few hours ago."""

    def round(self, number: int) -> list[OrderPlan]:
        """The orders of round ``number`` (every channel × store), shuffled."""
        plans: list[OrderPlan] = []
        for channel in self.channels:
            for store_number, store_id in enumerate(self.stores, start=1):
                written = channel.lunch(
                    store_id, store_number, self.orders_per_store,
                    random.Random(f"{number}:{channel.platform}:{store_id}"),
                    run=self.run + number, refund_approval=True, unmapped_sku=False,
                )  # fmt: skip
                for index, raw in enumerate(written):
                    plain = raw.model_dump(mode="json") if isinstance(raw, DemoOrder) else raw
                    begins = self.start_ms + (number * 1000 + index) * 20 * STEP_MS
                    plans.append(self._plan(channel, plain, begins))
        self.rng.shuffle(plans)
        return plans

    def _plan(self, channel: DemoChannel, raw: Mapping[str, Any], begins_ms: int) -> OrderPlan:
        order = DemoOrder.model_validate(raw)
        steps = [*order.placing, *order.service, *(order.action.then if order.action else [])]
        built = {
            (position, step): self._push(channel, raw, step, begins_ms + position * STEP_MS)
            for position, step in enumerate(steps)
        }
        pushes = [built[(position, step)] for position, step in enumerate(steps)]
        placing = pushes[: len(order.placing)]
        service = pushes[len(order.placing) : len(order.placing) + len(order.service)]
        if len(service) > 1 and self.rng.random() < SWAPPED_SHARE:
            at = self.rng.randrange(len(service) - 1)
            service[at], service[at + 1] = service[at + 1], service[at]
        action = None
        if order.action is not None:
            action = ActionPlan(
                order.action.action.value,
                order.action.reason,
                tuple(pushes[len(order.placing) + len(order.service) :]),
            )
        return OrderPlan(
            channel.platform, order.platform_order_id, order.store_id, order.story,
            tuple(placing), tuple(service), action,
            None if order.expected_state is None else order.expected_state.value,
            channel.platform in self.confirming and len(placing) > 1,
        )  # fmt: skip

    def _push(self, channel: DemoChannel, raw: Mapping[str, Any], step: str, at_ms: int) -> Push:
        base_url = self.config.bridge.public_base_url
        built = channel.push(raw, step, at_ms, base_url)
        request = built if isinstance(built, DemoPush) else DemoPush.model_validate(built)
        return Push(
            channel.platform, str(raw["platform_order_id"]), step, request.method,
            request.path, request.body, dict(request.headers),
            self._keys(channel.platform, request, base_url),
        )  # fmt: skip

    def _keys(self, platform: str, request: DemoPush, base_url: str) -> tuple[str, ...]:
        """The idempotency keys of a push's events, read by the plugin as the bridge does."""
        parts = urlsplit(request.path)
        segments = parts.path.removeprefix("/webhooks/").split("/")
        inbound = InboundRequest(
            method=request.method,
            url=base_url + parts.path,
            kind=segments[1] if len(segments) > 1 else None,
            query=parse_qsl(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=request.body,
            received_at_ms=int(time.time() * 1000),
        )
        parsed = self.registry.platform(platform).parse_event(
            inbound, self.config.plugin_config(platform)
        )
        if parsed is None or not parsed.events:
            raise SystemExit(f"soak: the {platform} plugin reads no event in a {request.path} push")
        return tuple(event.idempotency_key for event in parsed.events)
