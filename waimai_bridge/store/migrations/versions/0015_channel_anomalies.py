"""anomalies of a store's channel (no platform order): the platform and store they are
about, and one open anomaly per channel and rule

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_CHANNEL = "resolved_at_ms IS NULL AND platform_order_pk IS NULL"
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Upgrade the schema."""
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("platform", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("store_id", sa.String(length=64), nullable=True))
        batch_op.alter_column("platform_order_pk", existing_type=ID, nullable=True)
        batch_op.create_index(
            "ix_anomalies_open_channel",
            ["kind", "platform", "store_id"],
            unique=True,
            postgresql_where=sa.text(OPEN_CHANNEL),
            sqlite_where=sa.text(OPEN_CHANNEL),
        )


def downgrade() -> None:
    """Downgrade the schema; channel anomalies, which have no order, are deleted."""
    op.execute("DELETE FROM anomalies WHERE platform_order_pk IS NULL")
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.drop_index("ix_anomalies_open_channel")
        batch_op.alter_column("platform_order_pk", existing_type=ID, nullable=False)
        batch_op.drop_column("store_id")
        batch_op.drop_column("platform")
