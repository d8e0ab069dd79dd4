"""outbound actions: the request an action answers, and lookup by platform order

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    with op.batch_alter_table("outbound_actions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_key", sa.String(length=200), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_outbound_actions_platform_platform_order_id"),
            ["platform", "platform_order_id"],
            unique=False,
        )


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("outbound_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbound_actions_platform_platform_order_id"))
        batch_op.drop_column("request_key")
