"""pull compensation: leases, pull cursors, when an order was fetched, verified actions

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("until_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )
    op.create_table(
        "pull_cursors",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("since_ms", sa.BigInteger(), nullable=False),
        sa.Column("pulled_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("platform", "store_id", name=op.f("pk_pull_cursors")),
    )
    with op.batch_alter_table("platform_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fetched_at_ms", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("outbound_actions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("verified", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("outbound_actions", schema=None) as batch_op:
        batch_op.drop_column("verified")
    with op.batch_alter_table("platform_orders", schema=None) as batch_op:
        batch_op.drop_column("fetched_at_ms")
    op.drop_table("pull_cursors")
    op.drop_table("leases")
