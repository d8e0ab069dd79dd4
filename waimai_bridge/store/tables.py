"""The database tables (SQLAlchemy 2 declarative); Alembic migrations follow them exactly.

Times are epoch milliseconds and money is integer fen, as everywhere in the bridge, so the
same rows mean the same thing on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer(), "sqlite")
"""Primary keys: 64-bit, but SQLite's INTEGER so that it autoincrements there."""


class Base(DeclarativeBase):
    """The bridge's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {int: BigInteger, dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012  (read by SQLAlchemy)


class Order(Base):
    """The chain's own order (seed 000's ``order``): one per stored platform order."""

    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("platform", "platform_order_id"),
        # a page of one store's (or one state's) orders, by id, or of the orders updated
        # since a time, by update, reads only its own rows
        Index(None, "store_id", "id"),
        Index(None, "state", "id"),
        Index(None, "updated_at_ms", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    platform_order_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))
    rider_state: Mapped[str | None] = mapped_column(String(32))
    refunded_amount_fen: Mapped[int]
    price: Mapped[dict[str, Any] | None]
    net_income_fen: Mapped[int | None]
    """What the store earns after refunds (:mod:`waimai_bridge.income`); None while the
    platform states no income."""
    income_rule: Mapped[str | None] = mapped_column(String(16))
    """How ``net_income_fen`` was found (:class:`waimai_bridge.income.IncomeRule`)."""
    version: Mapped[int] = mapped_column(Integer)
    created_at_ms: Mapped[int]
    updated_at_ms: Mapped[int]

    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", order_by="OrderItem.line", cascade="all, delete-orphan"
    )


HELD = "order_id IS NULL AND NOT discarded"
"""Platform orders waiting out their accept hold (or never accepted)."""


class PlatformOrder(Base):
    """A platform's order as the bridge knows it (seed 000's ``waimai_order``)."""

    __tablename__ = "platform_orders"
    __table_args__ = (
        UniqueConstraint("platform", "platform_order_id"),
        # finding due holds must not read every order ever seen
        Index(
            "ix_platform_orders_held",
            "hold_started_at_ms",
            postgresql_where=text(HELD),
            sqlite_where=text(HELD),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    platform_order_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str] = mapped_column(String(64))
    store_inferred: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """``store_id`` is a plugin's guess (no event naming the store has arrived yet)."""
    state_code: Mapped[int | None] = mapped_column(Integer)
    order_state: Mapped[str | None] = mapped_column(String(32))
    price: Mapped[dict[str, Any] | None]
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), unique=True)
    hold_started_at_ms: Mapped[int | None]
    discarded: Mapped[bool] = mapped_column(Boolean)
    created_at_ms: Mapped[int] = mapped_column(index=True)
    updated_at_ms: Mapped[int]
    fetched_at_ms: Mapped[int | None]
    """When the order was last read from the platform (``fetch_order``), if ever."""
    details: Mapped[dict[str, Any] | None]
    """What the order shows a store's staff beyond its price (``order_details``): the
    platform's day sequence number, the customer's remark."""

    order: Mapped[Order | None] = relationship()


PAYLOAD_KEPT = "CAST(payload AS TEXT) <> '{}'"
"""Logged events whose payload retention has not emptied (yet)."""


class OrderEvent(Base):
    """The append-only event log; ``id`` is the arrival order. Retention empties the
    ``payload`` of old events (to ``{}``); the rest of the row stays."""

    __tablename__ = "order_events"
    __table_args__ = (
        UniqueConstraint("platform", "idempotency_key"),
        # the payload purge must not read again every event it has emptied
        Index(
            "ix_order_events_payload_kept",
            "received_at_ms",
            postgresql_where=text(PAYLOAD_KEPT),
            sqlite_where=text(PAYLOAD_KEPT),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform_order_pk: Mapped[int] = mapped_column(ForeignKey("platform_orders.id"), index=True)
    platform: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    native_code: Mapped[str] = mapped_column(String(64))
    state_code: Mapped[int | None] = mapped_column(Integer)
    kitchen_step: Mapped[str | None] = mapped_column(String(16))
    partial: Mapped[bool] = mapped_column(Boolean)
    refund_amount_fen: Mapped[int | None]
    refunded_items: Mapped[list[Any]]
    reason: Mapped[str | None] = mapped_column(Text)
    platform_time_ms: Mapped[int]
    received_at_ms: Mapped[int]
    payload: Mapped[dict[str, Any]]


class OrderItem(Base):
    """A line of a stored order, with the chain's product where the SKU mapping knows it."""

    __tablename__ = "order_items"
    __table_args__ = (UniqueConstraint("order_id", "line"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    line: Mapped[int] = mapped_column(Integer)
    sku_code: Mapped[str | None] = mapped_column(String(128))
    platform_sku_id: Mapped[str | None] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(Text)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_original_fen: Mapped[int]
    unit_paid_fen: Mapped[int]
    product_id: Mapped[str | None] = mapped_column(String(128))
    unmapped: Mapped[bool] = mapped_column(Boolean)

    order: Mapped[Order] = relationship(back_populates="items")


class SkuMapping(Base):
    """A platform item code → the chain's own product (SPEC §6)."""

    __tablename__ = "sku_mappings"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    sku_code: Mapped[str] = mapped_column(String(128), primary_key=True)
    product_id: Mapped[str] = mapped_column(String(128))
    updated_at_ms: Mapped[int]


OPEN = "resolved_at_ms IS NULL"
"""Anomalies not resolved yet."""
OPEN_CHANNEL = "resolved_at_ms IS NULL AND platform_order_pk IS NULL"
"""Channel anomalies not resolved yet."""


class Anomaly(Base):
    """Something a person should look at: about an order (an unmapped SKU, an order not
    accepted …), or about a store's channel (no platform order; ``platform`` and
    ``store_id`` name the channel, one open anomaly per channel and rule). ``kind`` is its
    rule (:class:`~waimai_bridge.settings.AnomalyRule`). Open until ``resolved_at_ms``,
    when the order or the channel moved on."""

    __tablename__ = "anomalies"
    __table_args__ = (
        UniqueConstraint("platform_order_pk", "kind", "detail"),
        Index(
            "ix_anomalies_open",
            "kind",
            "platform_order_pk",
            postgresql_where=text(OPEN),
            sqlite_where=text(OPEN),
        ),
        Index(
            "ix_anomalies_open_channel",
            "kind",
            "platform",
            "store_id",
            unique=True,
            postgresql_where=text(OPEN_CHANNEL),
            sqlite_where=text(OPEN_CHANNEL),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform_order_pk: Mapped[int | None] = mapped_column(ForeignKey("platform_orders.id"))
    platform: Mapped[str | None] = mapped_column(String(32))
    """A channel anomaly's platform (None for an order's: its platform order has it)."""
    store_id: Mapped[str | None] = mapped_column(String(64))
    """A channel anomaly's store (None for an order's)."""
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(String(500))
    created_at_ms: Mapped[int]
    resolved_at_ms: Mapped[int | None]


class InboxEvent(Base):
    """A push's native event as received, written before the platform gets its ACK.

    ``status`` is ``pending`` until a worker has applied it (``done``), or ``failed`` when
    the platform's plugin cannot make sense of it (a poison event, kept with its error).
    Once applied, the payload lives on in the event log alone: a done row's is ``{}``.
    """

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("platform", "idempotency_key"),
        Index(None, "status", "enqueued_at_ms"),
        Index(None, "status", "shard", "id"),
        Index(
            "ix_inbox_pending_order",
            "platform",
            "platform_order_id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    idempotency_key: Mapped[str] = mapped_column(String(200))
    store_id: Mapped[str] = mapped_column(String(64))
    store_inferred: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    shard: Mapped[int] = mapped_column(Integer)
    platform_order_id: Mapped[str] = mapped_column(String(64))
    native_code: Mapped[str] = mapped_column(String(64))
    platform_time_ms: Mapped[int]
    payload: Mapped[dict[str, Any]]
    received_at_ms: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    enqueued_at_ms: Mapped[int]
    done_at_ms: Mapped[int | None]


class OutboundAction(Base):
    """An action of the chain's own system on a platform order (SPEC §7.3), and its fate.

    ``status`` is ``pending`` until the platform answered ``done`` or the action
    ``failed`` (rejected, or ``attempt_limit`` reached; a human's retry raises the limit).
    While a worker calls the platform, ``in_flight_since_ms`` is set: another delivery of
    its message leaves it alone until the worker is taken for dead. ``request_key`` is the
    idempotency key of the event that opened the cancel/refund request an answering action
    answers (null for the other actions): one action of a kind per order and request.
    """

    __tablename__ = "outbound_actions"
    __table_args__ = (
        UniqueConstraint("idempotency_key"),
        Index(None, "status", "next_attempt_at_ms"),
        Index(None, "platform", "platform_order_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))
    platform: Mapped[str] = mapped_column(String(32))
    platform_order_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    request_key: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    attempt_limit: Mapped[int] = mapped_column(Integer)
    next_attempt_at_ms: Mapped[int]
    in_flight_since_ms: Mapped[int | None]
    result_code: Mapped[str | None] = mapped_column(String(64))
    result_message: Mapped[str | None] = mapped_column(Text)
    verified: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """The last answer was settled by reading the order on the platform (``verify_action``)."""
    created_at_ms: Mapped[int]
    updated_at_ms: Mapped[int]


class Subscription(Base):
    """A subscriber webhook (seed 001): where order updates are POSTed, signed with
    ``secret``; the filters (null: everything) narrow what it hears."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    store_ids: Mapped[list[Any] | None]
    platforms: Mapped[list[Any] | None]
    states: Mapped[list[Any] | None]
    created_at_ms: Mapped[int]


class Delivery(Base):
    """One update for one subscriber (the outbox), written in the transaction of the change.

    ``body`` is the JSON exactly as it is signed and sent. ``status`` is ``pending`` until
    the subscriber answered 2xx (``done``) or it was retried for the give-up time
    (``dead``).
    """

    __tablename__ = "deliveries"
    __table_args__ = (Index(None, "status", "next_attempt_at_ms"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    order_id: Mapped[int | None]
    kind: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at_ms: Mapped[int]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at_ms: Mapped[int]
    delivered_at_ms: Mapped[int | None]


class Change(Base):
    """A committed change of an order (state, an action's outcome, an anomaly), written with
    it: the feed the order board follows, by id."""

    __tablename__ = "changes"
    # ids never reused on SQLite, even once the purge empties the table: the board's
    # tailer reads by id
    __table_args__ = {"sqlite_autoincrement": True}  # noqa: RUF012  (read by SQLAlchemy)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    platform_order_id: Mapped[str] = mapped_column(String(64))
    store_id: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[int | None]
    kind: Mapped[str] = mapped_column(String(32))
    created_at_ms: Mapped[int] = mapped_column(index=True)


class StoreChannel(Base):
    """A store's settings on one platform (its channel) changed through the API: whether
    the bridge accepts its new orders itself."""

    __tablename__ = "store_channels"

    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    auto_accept: Mapped[bool] = mapped_column(Boolean)
    updated_at_ms: Mapped[int]


class Lease(Base):
    """A job one worker at a time does (``name``), and who holds it until when."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    until_ms: Mapped[int]


class PullCursor(Base):
    """Where the next pull of a store's missed pushes starts: the start of the last
    successful pull."""

    __tablename__ = "pull_cursors"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    since_ms: Mapped[int]
    pulled_at_ms: Mapped[int]


class ChannelCredentials(Base):
    """What lets the bridge act on a platform for one store, sealed at rest
    (:mod:`waimai_bridge.sealing`), and how its renewal goes. ``status`` is ``active`` or
    ``unauthorized`` (the platform refused a renewal, or the store withdrew its consent)."""

    __tablename__ = "channel_credentials"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    expires_at_ms: Mapped[int | None]
    scope: Mapped[str | None] = mapped_column(String(500))
    authorized_at_ms: Mapped[int]
    updated_at_ms: Mapped[int]
    failures: Mapped[int] = mapped_column(Integer)
    """Renewals in a row the platform could not answer."""
    retry_at_ms: Mapped[int | None]
    """No renewal before this (a backoff after a failure)."""
    problem: Mapped[str | None] = mapped_column(String(500))
    """Why the last renewal failed or the channel is unauthorized (never a secret)."""


class AuthorizationState(Base):
    """An authorization link handed out for a store: its ``state`` (kept as a hash) binds
    the platform's callback to the store, once."""

    __tablename__ = "authorization_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    store_id: Mapped[str] = mapped_column(String(64))
    created_at_ms: Mapped[int] = mapped_column(index=True)
    used_at_ms: Mapped[int | None]
