"""income after refunds: each order's net income and the rule that found it

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 02:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("net_income_fen", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("income_rule", sa.String(length=16), nullable=True))


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("income_rule")
        batch_op.drop_column("net_income_fen")
