"""stores' platform credentials, sealed, and the single-use states of authorization links

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade the schema."""
    op.create_table(
        "channel_credentials",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("access_token", sa.Text(), nullable=False),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("scope", sa.String(length=500), nullable=True),
        sa.Column("authorized_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("retry_at_ms", sa.BigInteger(), nullable=True),
        sa.Column("problem", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("platform", "store_id", name=op.f("pk_channel_credentials")),
    )
    op.create_table(
        "authorization_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_at_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_authorization_states")),
    )
    with op.batch_alter_table("authorization_states", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authorization_states_created_at_ms"), ["created_at_ms"], unique=False
        )


def downgrade() -> None:
    """Downgrade the schema."""
    op.drop_table("authorization_states")
    op.drop_table("channel_credentials")
