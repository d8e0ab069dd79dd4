"""store inferred

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 04:45:12.391621
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "store_inferred", sa.Boolean(), server_default=sa.text("(false)"), nullable=False
            )
        )

    with op.batch_alter_table("platform_orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "store_inferred", sa.Boolean(), server_default=sa.text("(false)"), nullable=False
            )
        )


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("platform_orders", schema=None) as batch_op:
        batch_op.drop_column("store_inferred")

    with op.batch_alter_table("inbox", schema=None) as batch_op:
        batch_op.drop_column("store_inferred")
