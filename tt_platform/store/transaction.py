"""One transaction scope for functions that accept either an Engine or a Connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import Connection, Engine


@contextmanager
def transaction(conn_or_engine: Connection | Engine) -> Iterator[Connection]:
    """Given an Engine: a new transaction, committed on success. Given a Connection: a savepoint
    in the caller's transaction, so a failure undoes only this unit and the caller still decides
    when to commit (SQLAlchemy 2 "commit as you go")."""
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.begin() as conn:
            yield conn
    elif isinstance(conn_or_engine, Connection):
        with conn_or_engine.begin_nested():
            yield conn_or_engine
    else:
        raise TypeError(f"expected a SQLAlchemy Engine or Connection, got {type(conn_or_engine).__name__}")
