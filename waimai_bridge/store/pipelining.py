"""Statements sent to PostgreSQL together: several statements, one round trip.

Under load a round trip is mostly waiting (for the server's process to run, then for this
thread to get the GIL back), and a transaction holds its orders' locks the whole time, so
the worker sends the statements that do not need each other's results at once, in
psycopg's pipeline mode. SQLAlchemy reads each result as soon as it sends a statement, so
these go to its connection's psycopg connection directly, inside its transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session

Statement = tuple[str, Mapping[str, Any]]
"""SQL text in psycopg's ``%(name)s`` style, and its parameters."""


def run_together(session: Session, statements: Sequence[Statement]) -> list[list[Any]]:
    """Run ``statements`` one after another in the session's transaction on PostgreSQL,
    sent in one round trip; the rows each returned, as named tuples (none for a statement
    without rows).

    Each statement sees what those before it did. Errors are raised as SQLAlchemy's, as
    the session's own statements' are, and a connection that failed is not used again.
    """
    connection = session.connection()
    driver: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
    try:
        with driver.pipeline():
            cursors = []
            for sql, parameters in statements:
                cursor = driver.cursor(row_factory=namedtuple_row)
                cursor.execute(sql, parameters)
                cursors.append(cursor)
        return [cursor.fetchall() if cursor.description else [] for cursor in cursors]
    except psycopg.Error as exc:
        if isinstance(exc, psycopg.OperationalError):
            connection.invalidate(exc)
        raise as_sqlalchemy_error(exc) from None


def as_sqlalchemy_error(exc: psycopg.Error) -> StatementError:
    """A psycopg error as SQLAlchemy raises it (without the statement's parameters, which
    may hold a push's payload)."""
    return DBAPIError.instance(None, None, exc, psycopg.Error, hide_parameters=True)
