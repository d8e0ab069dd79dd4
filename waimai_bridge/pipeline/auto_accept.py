"""Auto-accept: ask ``confirm`` of each order a shard batch newly created, on a store's
channel that accepts its orders itself, through the same action path as a person's click."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache

from waimai_bridge.errors import failure_site
from waimai_bridge.models import Action, Capability, PlatformState
from waimai_bridge.pipeline.actions import ActionRefused, ActionWorker
from waimai_bridge.pipeline.messages import Pipeline
from waimai_bridge.store import channels
from waimai_bridge.store.events import Applied, Incoming

logger = logging.getLogger(__name__)

REASON = "auto-accept"
SWEEP_WINDOW_MS = 3_600_000
"""How far back the sweep looks for new orders an ask was lost for."""


def key_of(platform: str, platform_order_id: str) -> str:
    """The idempotency key of an order's auto-accept: one per order, whoever asks it."""
    return f"auto-accept:{platform}:{platform_order_id}"


class AutoAccept:
    """Confirms the new orders of the channels that auto-accept, after their batch commits."""

    def __init__(self, pipeline: Pipeline, actions: ActionWorker) -> None:
        self.pipeline = pipeline
        self.actions = actions
        self.default = pipeline.config.bridge.auto_accept

    def created(self, incoming: Sequence[Incoming], applied: Sequence[Applied]) -> None:
        """Ask ``confirm`` of each order whose created event this batch newly applied, when
        its channel auto-accepts and its plugin can confirm. Never raises: the batch is
        committed, and a refused ask (an order already accepted) is logged."""
        orders: dict[tuple[str, str], str] = {}
        for item, outcome in zip(incoming, applied, strict=True):
            event = item.event
            if outcome.duplicate or event.state is not PlatformState.CREATED:
                continue
            if self._confirms(event.platform):
                orders.setdefault((event.platform, event.platform_order_id), event.store_id)
        if not orders:
            return
        try:
            with self.pipeline.database.transaction() as session:
                chosen = channels.chosen(session, set(orders.values()))
        except Exception as exc:
            logger.warning("auto-accept: the channels could not be read: %s", failure_site(exc))
            return
        for (platform, platform_order_id), store_id in orders.items():
            if chosen.get((store_id, platform), self.default):
                self._ask(platform, platform_order_id)

    def sweep(self, *, stale_after_ms: int, limit: int) -> int:
        """Ask ``confirm`` of the new orders of auto-accepting channels that a worker lost
        between its batch's commit and its ask (first seen between :data:`SWEEP_WINDOW_MS`
        and ``stale_after_ms`` ago); how many were asked."""
        now = self.pipeline.clock()
        platforms = [name for name in self.pipeline.registry.platforms if self._confirms(name)]
        with self.pipeline.database.transaction() as session:
            found = channels.unconfirmed(
                session, platforms, created_after_ms=now - SWEEP_WINDOW_MS,
                created_before_ms=now - stale_after_ms, limit=limit,
            )  # fmt: skip
            chosen = channels.chosen(session, {store_id for _, _, store_id in found})
        asked = 0
        for platform, platform_order_id, store_id in found:
            if chosen.get((store_id, platform), self.default):
                self._ask(platform, platform_order_id)
                asked += 1
        return asked

    def _ask(self, platform: str, platform_order_id: str) -> None:
        try:
            self.actions.ask(
                platform=platform, platform_order_id=platform_order_id, action=Action.CONFIRM,
                reason=REASON, key=key_of(platform, platform_order_id),
            )  # fmt: skip
        except ActionRefused as exc:
            logger.info("auto-accept of %s order %s refused: %s",
                        platform, platform_order_id, exc.message)  # fmt: skip
        except Exception as exc:
            logger.warning("auto-accept of %s order %s failed: %s",
                           platform, platform_order_id, failure_site(exc))  # fmt: skip

    @cache  # noqa: B019  (one per process's pipeline, as long as it lives)
    def _confirms(self, platform: str) -> bool:
        """Whether the platform's plugin can confirm an order."""
        plugin = self.pipeline.registry.platform(platform)
        return (
            plugin.supports(Capability.OUTBOUND_ACTION)
            and Action.CONFIRM in plugin.manifest.actions
        )
