"""Bulk writes for the import: new rows streamed in, changed rows updated by primary key.

On Postgres new rows go in with COPY FROM STDIN, written as they are produced, so the server
inserts one row while Python builds the next and no list of every row is ever held. On SQLite
they go in as one executemany. The statement count does not grow with the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import Table, insert, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from driftwarden.db.helpers import chunked

_POSTGRES = postgresql.dialect()


def pg_types(table: Table, names: Sequence[str]) -> list[str]:
    """Postgres type names (`uuid`, `varchar`, `jsonb`, ...) for COPY's typed dumpers.

    With the types named, psycopg picks each column's dumper once, not per value, and dumps a
    dict, list or bool bound for a jsonb column as JSON.
    """
    return [table.c[n].type.compile(dialect=_POSTGRES).split("(")[0].lower() for n in names]


def insert_rows(
    session: Session, table: Table, names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert tuples of the columns `names`, in that order; `rows` may be a generator."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return  # no statement for nothing
    rows = chain((first,), rows)
    if session.get_bind().dialect.name == "postgresql":
        _copy(session, table, names, rows)
        return
    batch = [dict(zip(names, row, strict=True)) for row in rows]
    session.execute(insert(table), batch)


def _copy(
    session: Session, table: Table, names: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY FROM STDIN in the session's own transaction: the fastest way Postgres loads rows."""
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    quoted = ", ".join(f'"{n}"' for n in names)
    with cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN') as copy:
        copy.set_types(pg_types(table, names))
        for row in rows:
            copy.write_row(row)


def update_rows(session: Session, model: Any, updates: list[dict[str, Any]]) -> None:
    """Bulk UPDATE by primary key; rows are grouped by the attributes they set."""
    by_keys: dict[tuple[str, ...], list[dict]] = {}
    for row in updates:  # executemany needs the same keys in every row
        by_keys.setdefault(tuple(sorted(row)), []).append(row)
    for rows in by_keys.values():
        for chunk in chunked(rows):
            session.execute(update(model), chunk)
