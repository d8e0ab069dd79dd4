"""What a failure in the pipeline means: an outage (try the whole message again later) or
something wrong with what the message carries (set that thing aside)."""

from __future__ import annotations

from redis import RedisError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the database or the broker cannot be used right now (so the
    whole message is tried again later), rather than that what it carries is bad."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | InterfaceError | OSError | RedisError)


def error_text(exc: BaseException) -> str:
    """What to keep of an error: a database error's own message, without the statement
    and values SQLAlchemy adds to it."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        return f"{type(exc.orig).__name__}: {exc.orig}"
    return f"{type(exc).__name__}: {exc}"
