"""index of pending inbox events by platform order

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 17:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    """Upgrade the schema."""

    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbox_pending_order",
            ["platform", "platform_order_id"],
            unique=False,
            postgresql_where=_PENDING,
            sqlite_where=_PENDING,
        )


def downgrade() -> None:
    """Downgrade the schema."""

    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_inbox_pending_order", postgresql_where=_PENDING, sqlite_where=_PENDING
        )
