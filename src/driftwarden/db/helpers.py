"""Small database helpers every domain shares: insert-or-conflict, chunked batches, and the
constructs whose spelling differs between Postgres and SQLite (an upsert, a match against many
strings, a relation of string rows sent as parameters)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, TypeVar

from sqlalchemy import ARRAY, String, Table, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause

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


def string_rows(
    name: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, dialect_name: str
) -> FromClause:
    """`rows` of strings as a relation to join with, whatever their number, in one parameter per
    column on Postgres (`unnest` of arrays) or one JSON parameter on SQLite (`json_each`)."""
    if dialect_name == "postgresql":
        arrays = [
            bindparam(None, [row[i] for row in rows], type_=ARRAY(String()))
            for i in range(len(columns))
        ]
        return func.unnest(*arrays).table_valued(*columns).render_derived(name=name)
    each = func.json_each(bindparam(None, json.dumps([list(row) for row in rows]))).table_valued(
        "value"
    )
    fields = (func.json_extract(each.c.value, f"$[{i}]").label(c) for i, c in enumerate(columns))
    return select(*fields).select_from(each).subquery(name)
