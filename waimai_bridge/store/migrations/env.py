"""Alembic environment: migrations run on the connection the bridge hands over."""

from __future__ import annotations

from alembic import context

from waimai_bridge.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through waimai_bridge.store.database.Database.migrate")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
