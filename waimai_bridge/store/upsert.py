"""Inserting a row only when no row with the same unique key exists, in one statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from waimai_bridge.store.tables import Base

_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_ignoring_conflict(
    session: Session, table: type[Base], values: dict[str, Any]
) -> Any | None:
    """Insert a row unless it collides with a row on a unique key; its id, or None.

    Each table this is used on has one unique key besides its generated id.
    """
    dialect = session.get_bind().dialect.name
    if dialect not in _INSERTS:
        raise NotImplementedError(f"database {dialect!r} is not supported: {', '.join(_INSERTS)}")
    statement = (
        _INSERTS[dialect](table)
        .values(**values)
        .on_conflict_do_nothing()
        .returning(*inspect(table).primary_key)
    )
    return session.execute(statement).scalar()
