"""anomaly rules: when an anomaly resolved itself, and the open ones by rule

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolved_at_ms", sa.BigInteger(), nullable=True))
        batch_op.create_index(
            "ix_anomalies_open",
            ["kind", "platform_order_pk"],
            unique=False,
            postgresql_where=sa.text("resolved_at_ms IS NULL"),
            sqlite_where=sa.text("resolved_at_ms IS NULL"),
        )


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("anomalies", schema=None) as batch_op:
        batch_op.drop_index("ix_anomalies_open")
        batch_op.drop_column("resolved_at_ms")
