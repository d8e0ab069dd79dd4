"""index of held platform orders

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 02:47:47.298032
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""

    with op.batch_alter_table("platform_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_platform_orders_held",
            ["hold_started_at_ms"],
            unique=False,
            postgresql_where=sa.text("order_id IS NULL AND NOT discarded"),
            sqlite_where=sa.text("order_id IS NULL AND NOT discarded"),
        )


def downgrade() -> None:
    """Downgrade the schema."""

    with op.batch_alter_table("platform_orders", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_platform_orders_held",
            postgresql_where=sa.text("order_id IS NULL AND NOT discarded"),
            sqlite_where=sa.text("order_id IS NULL AND NOT discarded"),
        )
