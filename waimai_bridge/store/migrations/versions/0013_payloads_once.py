"""payloads stored once (the event log keeps them; applied inbox rows and platform orders
do not), and the indexes the order API's filters read

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 04:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    op.execute("UPDATE inbox SET payload = '{}' WHERE status = 'done'")
    with op.batch_alter_table("platform_orders", schema=None) as batch_op:
        batch_op.drop_column("latest_payload")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_store_id"))
        batch_op.drop_index(batch_op.f("ix_orders_state"))
        batch_op.create_index(batch_op.f("ix_orders_store_id_id"), ["store_id", "id"])
        batch_op.create_index(batch_op.f("ix_orders_state_id"), ["state", "id"])
        batch_op.drop_index(batch_op.f("ix_orders_updated_at_ms"))
        batch_op.create_index(batch_op.f("ix_orders_updated_at_ms_id"), ["updated_at_ms", "id"])


def downgrade() -> None:
    """Downgrade the schema; a platform order's latest payload comes back from its latest
    logged event (applied inbox rows keep theirs emptied)."""
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_orders_updated_at_ms_id"))
        batch_op.create_index(
            batch_op.f("ix_orders_updated_at_ms"), ["updated_at_ms"], unique=False
        )
        batch_op.drop_index(batch_op.f("ix_orders_state_id"))
        batch_op.drop_index(batch_op.f("ix_orders_store_id_id"))
        batch_op.create_index(batch_op.f("ix_orders_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_orders_store_id"), ["store_id"], unique=False)
    with op.batch_alter_table("platform_orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("latest_payload", sa.JSON(), nullable=False, server_default="{}")
        )
    op.execute(
        "UPDATE platform_orders SET latest_payload = COALESCE(("
        " SELECT payload FROM order_events"
        " WHERE order_events.platform_order_pk = platform_orders.id"
        " ORDER BY order_events.id DESC LIMIT 1), '{}')"
    )
