"""Writing many rows in one statement: inserting those whose unique key is new, and
updating rows by id."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Connection, Insert, Update, bindparam, inspect, update
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


@cache
def _recordset_statement(
    table: type[Base], names: tuple[str, ...], returning: tuple[Any, ...]
) -> str:
    """PostgreSQL's multi-row insert of rows sent as one JSON array: the same text whatever
    the number of rows, so psycopg and the server parse and plan it once (a VALUES list of
    n rows is a new statement of n × columns parameters each time), and encoding the rows
    is one call."""
    sql_table = Base.metadata.tables[table.__tablename__]
    quote = _POSTGRESQL.identifier_preparer.quote
    columns = ", ".join(map(quote, names))
    returned = ", ".join(quote(column.name) for column in returning or sql_table.primary_key)
    return (
        f"INSERT INTO {quote(sql_table.name)} ({columns}) "
        f"SELECT {columns} FROM {_recordset(table, names)} "
        f"ON CONFLICT DO NOTHING RETURNING {returned}"
    )


_POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]


def _recordset(table: type[Base], names: tuple[str, ...]) -> str:
    """The rows of the JSON array parameter ``rows`` as a relation ``u`` of these columns."""
    sql_table = Base.metadata.tables[table.__tablename__]
    quote = _POSTGRESQL.identifier_preparer.quote
    record = ", ".join(
        f"{quote(name)} {sql_table.c[name].type.compile(dialect=_POSTGRESQL)}" for name in names
    )
    return f"json_to_recordset(%(rows)s::json) AS u({record})"


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
    dialect = bind.dialect.name
    if isinstance(rows, dict):
        return executor.execute(_statement(dialect, table, returning), rows).scalar()
    if not rows:
        return []
    if dialect == "postgresql":
        return _insert_recordset(executor, table, rows, returning)
    return executor.execute(_statement(dialect, table, returning), list(rows)).all()


def _insert_recordset(
    executor: Session | Connection,
    table: type[Base],
    rows: Sequence[dict[str, Any]],
    returning: tuple[Any, ...],
) -> Any:
    statement, parameters = recordset_insert(table, rows, returning=returning)
    connection = executor.connection() if isinstance(executor, Session) else executor
    return connection.exec_driver_sql(statement, parameters).all()


def recordset_insert(
    table: type[Base], rows: Sequence[dict[str, Any]], *, returning: tuple[Any, ...] = ()
) -> tuple[str, dict[str, str]]:
    """What :func:`insert_ignoring_conflict` sends to PostgreSQL for a list of rows: the
    statement and its parameters, for a connection of the caller's own (an asynchronous
    one, say)."""
    return _recordset_statement(table, tuple(rows[0]), returning), {"rows": _json(rows)}


def update_rows(session: Session, table: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Set columns of rows found by their ``id``: each row is a dict of ``id`` and the new
    values, every row naming the same columns."""
    if not rows:
        return
    names = tuple(name for name in rows[0] if name != "id")
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql(
            _update_recordset_statement(table, names),
            {"rows": _json(rows), "ids": [row["id"] for row in rows]},
        )
    else:
        renamed = [{"row_id": row["id"], **{name: row[name] for name in names}} for row in rows]
        session.connection().execute(_update_statement(table, names), renamed)


@cache
def _update_recordset_statement(table: type[Base], names: tuple[str, ...]) -> str:
    """PostgreSQL's update of rows sent as one JSON array (see the insert's, above).

    The ids are sent again as an array: the planner takes any JSON array for 100 rows, and
    joined on that alone it scans a table of some thousand rows whole; ``id = ANY(ids)``
    it looks up in the primary key.
    """
    quote = _POSTGRESQL.identifier_preparer.quote
    target = quote(table.__tablename__)
    assignments = ", ".join(f"{quote(name)} = u.{quote(name)}" for name in names)
    return (
        f"UPDATE {target} SET {assignments} "
        f"FROM {_recordset(table, ('id', *names))} "
        f"WHERE {target}.id = u.id AND {target}.id = ANY(%(ids)s)"
    )


@cache
def _update_statement(table: type[Base], names: tuple[str, ...]) -> Update:
    sql_table = Base.metadata.tables[table.__tablename__]
    return (
        update(sql_table)
        .where(sql_table.c.id == bindparam("row_id"))
        .values({name: bindparam(name, type_=sql_table.c[name].type) for name in names})
    )


def _json(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as one JSON array (a NaN stays NaN, which the database refuses)."""
    return to_json(rows, inf_nan_mode="constants").decode()
