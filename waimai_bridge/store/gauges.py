"""What the database holds, as Prometheus gauges read at scrape time: inbox depth and age per
shard, orders waiting out their hold and overdue releases, dead letters, pending deliveries,
open anomalies by rule and store, and stores' channels by authorization status.

One process serves them (the web process, at ``/metrics``); every label value comes from a
bounded set (the configured shards, rules, dead-letter kinds and stores, the platforms
whose plugins stored credentials, the statuses).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from waimai_bridge.metrics import OTHER
from waimai_bridge.settings import AnomalyRule, AuthorizationSettings
from waimai_bridge.store.credentials import CredentialStatus
from waimai_bridge.store.tables import (
    Anomaly,
    ChannelCredentials,
    Delivery,
    InboxEvent,
    OutboundAction,
    PlatformOrder,
)

if TYPE_CHECKING:
    from waimai_bridge.store.database import Database

FRESH_S = 5.0
"""How long one reading of the database serves scrapes."""

DEAD_LETTERS = {
    "inbox": (InboxEvent, InboxEvent.status == "failed"),
    "actions": (OutboundAction, OutboundAction.status == "failed"),
    "deliveries": (Delivery, Delivery.status == "dead"),
}
"""The kinds of dead letter: work that stopped and waits for a person."""
STORED_STATUSES = (
    CredentialStatus.ACTIVE,
    CredentialStatus.EXPIRING,
    CredentialStatus.UNAUTHORIZED,
)
"""The statuses of a channel with stored credentials."""
RENEW_AHEAD_MS = int(AuthorizationSettings().refresh_ahead_minutes * 60_000)
"""Credentials this close to expiry count as expiring, unless the app says otherwise."""


class DatabaseGauges(Collector):
    """A Prometheus collector of what the database holds (see the module's docstring)."""

    def __init__(
        self,
        database: Database,
        *,
        shards: int,
        stores: frozenset[str],
        accept_hold_ms: int,
        overdue_after_ms: int,
        clock: Callable[[], int],
        renew_ahead_ms: int = RENEW_AHEAD_MS,
    ) -> None:
        self.database = database
        self.renew_ahead_ms = renew_ahead_ms
        self.shards = shards
        self.stores = stores
        self.accept_hold_ms = accept_hold_ms
        self.overdue_after_ms = overdue_after_ms
        self.clock = clock
        self._lock = threading.Lock()
        self._read_at = -FRESH_S
        self._metrics: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        """The gauges, read again when the last reading is older than :data:`FRESH_S`."""
        with self._lock:
            if time.monotonic() - self._read_at >= FRESH_S:
                with self.database.reading() as session:
                    self._metrics = list(self._read(session, self.clock()))
                self._read_at = time.monotonic()
            return iter(self._metrics)

    def _read(self, session: Session, now_ms: int) -> Iterator[Metric]:
        pending = GaugeMetricFamily(
            "waimai_inbox_pending", "Inbox events waiting for a worker, by shard.", labels=["shard"]
        )
        oldest = GaugeMetricFamily(
            "waimai_inbox_oldest_pending_age_seconds",
            "Age of the oldest inbox event waiting for a worker, by shard (0: none waits).",
            labels=["shard"],
        )
        by_shard = {
            shard: (count, first)
            for shard, count, first in session.execute(
                select(InboxEvent.shard, func.count(), func.min(InboxEvent.received_at_ms))
                .where(InboxEvent.status == "pending")
                .group_by(InboxEvent.shard)
            )
        }
        for shard in range(self.shards):
            count, first = by_shard.get(shard, (0, None))
            pending.add_metric([str(shard)], count)
            oldest.add_metric([str(shard)], 0 if first is None else max(0, now_ms - first) / 1000)
        yield pending
        yield oldest
        yield from self._holds(session, now_ms)
        dead = GaugeMetricFamily(
            "waimai_dead_letters",
            "Work that stopped and waits for a person, by kind (inbox: parked events, "
            "actions: failed actions, deliveries: dead subscriber updates).",
            labels=["kind"],
        )
        for kind, (table, where) in DEAD_LETTERS.items():
            dead.add_metric(
                [kind], session.scalar(select(func.count()).select_from(table).where(where)) or 0
            )
        yield dead
        waiting = session.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.status == "pending")
        )
        yield GaugeMetricFamily(
            "waimai_deliveries_pending", "Subscriber updates not yet delivered.", value=waiting or 0
        )
        yield from self._anomalies(session)
        yield self._channels(session, now_ms)

    def _holds(self, session: Session, now_ms: int) -> Iterator[Metric]:
        held = (
            PlatformOrder.order_id.is_(None),
            PlatformOrder.discarded.is_(False),
            PlatformOrder.hold_started_at_ms.is_not(None),
        )
        count = session.scalar(select(func.count()).select_from(PlatformOrder).where(*held))
        late = now_ms - self.accept_hold_ms - self.overdue_after_ms
        overdue = session.scalar(
            select(func.count())
            .select_from(PlatformOrder)
            .where(*held, PlatformOrder.hold_started_at_ms < late)
        )
        yield GaugeMetricFamily(
            "waimai_held_orders", "Accepted orders waiting out their accept hold.", value=count or 0
        )
        yield GaugeMetricFamily(
            "waimai_overdue_releases",
            "Held orders whose release is overdue by more than the resend time.",
            value=overdue or 0,
        )

    def _anomalies(self, session: Session) -> Iterator[Metric]:
        by_rule = GaugeMetricFamily(
            "waimai_anomalies_open", "Open anomalies, by rule.", labels=["rule"]
        )
        counts: dict[str, int] = {
            kind: count
            for kind, count in session.execute(
                select(Anomaly.kind, func.count())
                .where(Anomaly.resolved_at_ms.is_(None))
                .group_by(Anomaly.kind)
            )
        }
        for rule in AnomalyRule:
            by_rule.add_metric([rule.value], counts.get(rule.value, 0))
        yield by_rule
        by_store = GaugeMetricFamily(
            "waimai_store_anomalies_open",
            "Open anomalies, by store (configured stores; others as 'other'); stores with "
            "none are left out.",
            labels=["store"],
        )
        stores: dict[str, int] = {}
        store_of = func.coalesce(PlatformOrder.store_id, Anomaly.store_id)
        for store_id, count in session.execute(
            select(store_of, func.count())
            .select_from(Anomaly)
            .outerjoin(PlatformOrder, Anomaly.platform_order_pk == PlatformOrder.id)
            .where(Anomaly.resolved_at_ms.is_(None))
            .group_by(store_of)
        ):
            label = store_id if store_id in self.stores else OTHER
            stores[label] = stores.get(label, 0) + count
        for label, count in sorted(stores.items()):
            by_store.add_metric([label], count)
        yield by_store

    def _channels(self, session: Session, now_ms: int) -> Metric:
        channels = GaugeMetricFamily(
            "waimai_channels",
            "Stores' channels with stored credentials, by platform and status (active, "
            "expiring, unauthorized).",
            labels=["platform", "status"],
        )
        status = case(
            (ChannelCredentials.status == CredentialStatus.UNAUTHORIZED.value,
             literal(CredentialStatus.UNAUTHORIZED.value)),
            (ChannelCredentials.expires_at_ms <= now_ms + self.renew_ahead_ms,
             literal(CredentialStatus.EXPIRING.value)),
            else_=literal(CredentialStatus.ACTIVE.value),
        )  # fmt: skip
        counts: dict[tuple[str, str], int] = {
            (platform, found): count
            for platform, found, count in session.execute(
                select(ChannelCredentials.platform, status, func.count()).group_by(
                    ChannelCredentials.platform, status
                )
            )
        }
        for platform in sorted({platform for platform, _ in counts}):
            for stored in STORED_STATUSES:
                channels.add_metric(
                    [platform, stored.value], counts.get((platform, stored.value), 0)
                )
        return channels
