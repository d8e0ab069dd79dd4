"""Inserting a row only when no row with the same unique key exists, in one statement."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Insert, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from waimai_bridge.store.tables import Base

_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@cache
def _statement(dialect: str, table: type[Base], returning: tuple[Any, ...]) -> Insert:
    if dialect not in _INSERTS:
        raise NotImplementedError(f"database {dialect!r} is not supported: {', '.join(_INSERTS)}")
    mapper = inspect(table)
    columns = returning or tuple(mapper.primary_key)
    # the table itself, not the mapped class: a plain INSERT, without the ORM's bulk machinery
    statement: Insert = (
        _INSERTS[dialect](mapper.local_table).on_conflict_do_nothing().returning(*columns)
    )
    return statement


def insert_ignoring_conflict(
    executor: Session | Connection,
    table: type[Base],
    rows: dict[str, Any] | Sequence[dict[str, Any]],
    *,
    returning: tuple[Any, ...] = (),
) -> Any:
    """Insert the rows that do not collide with an existing row on a unique key.

    Each table this is used on has one unique key besides its generated id. For one row
    (a dict) the answer is its id, or None when it existed; for a list, the ``returning``
    columns (default: the id) of each row inserted. The statement is built once and
    cached, so a call costs little more than the database's own work.
    """
    bind = executor.get_bind() if isinstance(executor, Session) else executor
    statement = _statement(bind.dialect.name, table, returning)
    if isinstance(rows, dict):
        return executor.execute(statement, rows).scalar()
    if not rows:
        return []
    return executor.execute(statement, list(rows)).all()
