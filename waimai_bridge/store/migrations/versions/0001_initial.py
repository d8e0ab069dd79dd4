"""orders, platform orders, event log, items, SKU mappings, anomalies

Revision ID: 0001
Revises:
Create Date: 2026-11-22 01:06:04.828928
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""

    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("platform_order_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("rider_state", sa.String(length=32), nullable=True),
        sa.Column("refunded_amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint(
            "platform", "platform_order_id", name=op.f("uq_orders_platform_platform_order_id")
        ),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_orders_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_store_id"), ["store_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_orders_updated_at_ms"), ["updated_at_ms"], unique=False
        )

    op.create_table(
        "sku_mappings",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("sku_code", sa.String(length=128), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("platform", "sku_code", name=op.f("pk_sku_mappings")),
    )
    op.create_table(
        "order_items",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("sku_code", sa.String(length=128), nullable=True),
        sa.Column("platform_sku_id", sa.String(length=128), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("unit_original_fen", sa.BigInteger(), nullable=False),
        sa.Column("unit_paid_fen", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.String(length=128), nullable=True),
        sa.Column("unmapped", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_order_items_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_items")),
        sa.UniqueConstraint("order_id", "line", name=op.f("uq_order_items_order_id_line")),
    )
    op.create_table(
        "platform_orders",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("platform_order_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("state_code", sa.Integer(), nullable=True),
        sa.Column("order_state", sa.String(length=32), nullable=True),
        sa.Column("latest_payload", sa.JSON(), nullable=False),
        sa.Column("price", sa.JSON(), nullable=True),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("hold_started_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("discarded", sa.Boolean(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_platform_orders_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_orders")),
        sa.UniqueConstraint("order_id", name=op.f("uq_platform_orders_order_id")),
        sa.UniqueConstraint(
            "platform",
            "platform_order_id",
            name=op.f("uq_platform_orders_platform_platform_order_id"),
        ),
    )
    op.create_table(
        "anomalies",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "platform_order_pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_anomalies_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["platform_order_pk"],
            ["platform_orders.id"],
            name=op.f("fk_anomalies_platform_order_pk_platform_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomalies")),
        sa.UniqueConstraint(
            "platform_order_pk",
            "kind",
            "detail",
            name=op.f("uq_anomalies_platform_order_pk_kind_detail"),
        ),
    )
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_anomalies_order_id"), ["order_id"], unique=False)

    op.create_table(
        "order_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "platform_order_pk",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("native_code", sa.String(length=64), nullable=False),
        sa.Column("state_code", sa.Integer(), nullable=True),
        sa.Column("kitchen_step", sa.String(length=16), nullable=True),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("refund_amount_fen", sa.BigInteger(), nullable=True),
        sa.Column("refunded_items", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("platform_time_ms", sa.BigInteger(), nullable=False),
        sa.Column("received_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_order_pk"],
            ["platform_orders.id"],
            name=op.f("fk_order_events_platform_order_pk_platform_orders"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
        sa.UniqueConstraint(
            "platform", "idempotency_key", name=op.f("uq_order_events_platform_idempotency_key")
        ),
    )
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_order_events_platform_order_pk"), ["platform_order_pk"], unique=False
        )


def downgrade() -> None:
    """Downgrade the schema."""

    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_events_platform_order_pk"))

    op.drop_table("order_events")
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_anomalies_order_id"))

    op.drop_table("anomalies")
    op.drop_table("platform_orders")
    op.drop_table("order_items")
    op.drop_table("sku_mappings")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_updated_at_ms"))
        batch_op.drop_index(batch_op.f("ix_orders_store_id"))
        batch_op.drop_index(batch_op.f("ix_orders_state"))

    op.drop_table("orders")
