"""retention: the logged events whose payload is not emptied yet, by arrival time

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KEPT = sa.text("CAST(payload AS TEXT) <> '{}'")


def upgrade() -> None:
    """Upgrade the schema."""
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_order_events_payload_kept",
            ["received_at_ms"],
            unique=False,
            postgresql_where=_KEPT,
            sqlite_where=_KEPT,
        )


def downgrade() -> None:
    """Downgrade the schema."""
    with op.batch_alter_table("order_events", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_order_events_payload_kept", postgresql_where=_KEPT, sqlite_where=_KEPT
        )
