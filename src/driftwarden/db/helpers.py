"""Small database helpers every domain shares: insert-or-conflict, chunked batches, and the two
constructs whose spelling differs between Postgres and SQLite (an upsert, a match against many
strings)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import ARRAY, String, Table, any_, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement

from driftwarden.errors import Conflict

T = TypeVar("T")
# Ids per IN list / rows per bulk statement: far below SQLite's 32 766 and Postgres's 65 535
# bound parameters, and large enough that a 100 000-row job is a hundred statements.
BATCH_SIZE = 1000


def insert_or_conflict(
    session: Session, row: object, *, code: str, message: str, details: Any = None
) -> None:
    """Add and flush `row`; a unique-index violation becomes `Conflict(code)`.

    The session stays usable after the conflict.
    """
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(message, code=code, details=details) from exc


def chunked(items: Iterable[T], size: int = BATCH_SIZE) -> Iterator[list[T]]:
    """Lists of at most `size` items, in order: bounded IN lists and bulk statements."""
    if size < 1:
        raise ValueError("size must be at least 1")
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def dialect_insert(dialect_name: str, table: Table) -> Insert:
    """The INSERT of the dialect in use, which has `on_conflict_do_update` / `_do_nothing`."""
    return (postgresql if dialect_name == "postgresql" else sqlite).insert(table)


def in_strings(column: Any, values: list[str], *, dialect_name: str) -> ColumnElement[bool]:
    """`column IN (...)`; on Postgres `= ANY(array)`, one parameter whatever the number of values.

    A short statement text keeps psycopg's query cache (and SQLAlchemy's) hitting; an IN list of
    hundreds of placeholders is re-parsed on every execution.
    """
    if dialect_name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(String())))
    return column.in_(values)
