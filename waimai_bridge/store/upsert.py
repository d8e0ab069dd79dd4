"""Inserting a row only when no row with the same unique key exists, in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from waimai_bridge.store.tables import Base

_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_ignoring_conflict(
    session: Session,
    table: type[Base],
    rows: dict[str, Any] | Sequence[dict[str, Any]],
    *,
    returning: Sequence[Any] | None = None,
) -> Any:
    """Insert the rows that do not collide with an existing row on a unique key.

    Each table this is used on has one unique key besides its generated id. For one row
    (a dict) the answer is its id, or None when it existed; for a list, the ``returning``
    columns (default: the id) of each row inserted.
    """
    dialect = session.get_bind().dialect.name
    if dialect not in _INSERTS:
        raise NotImplementedError(f"database {dialect!r} is not supported: {', '.join(_INSERTS)}")
    many = not isinstance(rows, dict)
    if many and not rows:
        return []
    columns = returning or inspect(table).primary_key
    statement = _INSERTS[dialect](table).values(rows).on_conflict_do_nothing().returning(*columns)
    result = session.execute(statement)
    if many:
        return result.all()
    return result.scalar()
