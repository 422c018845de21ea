"""One plausible row in every still-empty table, so a test can prove who may read it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Engine,
    Float,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Uuid,
    func,
    select,
)
from sqlalchemy.types import JSON, DateTime

from driftwarden.db.models import metadata


def _value(column: Column, now: datetime) -> Any:
    kind = column.type
    if isinstance(kind, Uuid):
        return uuid.uuid4()
    if isinstance(kind, (DateTime,)) or getattr(kind, "impl", None).__class__ is DateTime:
        return now
    if isinstance(kind, Date):
        return now.date()
    if isinstance(kind, Boolean):
        return False
    if isinstance(kind, Integer):
        return 1
    if isinstance(kind, Float):
        return 0.5
    if isinstance(kind, LargeBinary):
        return b"x"
    if isinstance(kind, (String, Text)):
        return "x"
    if isinstance(kind, JSON) or isinstance(getattr(kind, "impl", None), JSON):
        return {}
    raise TypeError(f"no sample value for {column.table.name}.{column.name} ({kind!r})")


def _row(conn, table: Table, now: datetime) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    row = {}
    for column in table.columns:
        fks = list(column.foreign_keys)
        if fks:
            target = fks[0].column
            row[column.name] = conn.scalar(select(target).limit(1))
        else:
            row[column.name] = _value(column, now)
    return row


def fill_empty_tables(engine: Engine) -> list[str]:
    """Insert one row into each table that has none; returns the tables it filled."""
    now = datetime.now(UTC)
    filled = []
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            if conn.scalar(select(func.count()).select_from(table)):
                continue
            conn.execute(table.insert().values(**_row(conn, table, now)))
            filled.append(table.name)
    return filled
