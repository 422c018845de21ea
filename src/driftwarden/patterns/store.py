"""Set-based writes on issue_patterns that stay correct with many writers.

Inserts go through INSERT … ON CONFLICT DO NOTHING on the partial unique index of open patterns,
so a writer that loses a race learns it from RETURNING and reuses the winner's row instead of
failing. Every helper takes whole key/id sets and issues a few statements per batch, never one
per pattern. Locks are always taken in dedupe_key order so concurrent writers cannot deadlock.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import String, Table, cast, false, func, literal, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from driftwarden.db.helpers import chunked
from driftwarden.patterns.lifecycle import CLOSED_STATUSES, history_entry, iso
from driftwarden.patterns.models import _OPEN, IssuePattern

TABLE: Table = IssuePattern.__table__  # type: ignore[assignment]
IS_OPEN = TABLE.c.status.not_in(CLOSED_STATUSES)


def new_row(
    *,
    org_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    title: str,
    primary_tag: str,
    priority: str,
    evidence: dict[str, Any],
    dedupe_key: str | None,
    now: datetime,
    related_tags: Iterable[str] = (),
    owner: str | None = None,
    api_key_id: uuid.UUID | None = None,
    note: str | None = None,
) -> dict[str, Any]:
    """Column values of a freshly detected pattern; its creation is the first history entry."""
    entry = history_entry(
        from_status=None, to_status="detected", at=now, by_api_key_id=api_key_id, note=note
    )
    return {
        "id": uuid.uuid4(),
        "org_id": org_id,
        "agent_id": agent_id,
        "title": title[:500],
        "primary_tag": primary_tag,
        "related_tags": list(related_tags),
        "status": "detected",
        "priority": priority,
        "owner": owner,
        "evidence": evidence,
        "dedupe_key": dedupe_key,
        "occurrence_count": 1,
        "first_seen_at": now,
        "last_seen_at": now,
        "status_history": [entry],
        "created_at": now,
        "updated_at": now,
    }


def insert_open(session: Session, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert new open patterns in dedupe_key order; returns the keys inserted.

    The other keys were taken.
    """
    if not rows:
        return set()
    ordered = sorted(rows, key=lambda row: row["dedupe_key"] or "")
    if session.get_bind().dialect.name == "postgresql":
        return _insert_open_pg(session, ordered)
    statement = (
        sqlite.insert(TABLE)
        .on_conflict_do_nothing(index_elements=["org_id", "dedupe_key"], index_where=_OPEN)
        .returning(TABLE.c.dedupe_key)
    )
    # One executemany, which SQLAlchemy sends as multi-row INSERTs ("insertmanyvalues").
    return set(session.scalars(statement, ordered))


def _insert_open_pg(session: Session, ordered: Sequence[dict[str, Any]]) -> set[str]:
    """All rows as one JSON parameter.

    At 10 000 rows, binding 17 parameters per row costs seconds.
    """
    columns = [column.name for column in TABLE.columns]
    record = ", ".join(
        f"{name} {TABLE.c[name].type.compile(dialect=postgresql.dialect())}" for name in columns
    )
    statement = text(
        f"INSERT INTO issue_patterns ({', '.join(columns)}) "
        f"SELECT {', '.join('r.' + name for name in columns)} "
        f"FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r({record}) ORDER BY r.dedupe_key "
        f"ON CONFLICT (org_id, dedupe_key) WHERE {_OPEN.text} DO NOTHING RETURNING dedupe_key"
    )
    payload = json.dumps(
        [{name: row[name] for name in columns} for row in ordered], default=_json_default
    )
    return set(session.scalars(statement, {"rows": payload}))


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"cannot encode {type(value).__name__}")


def lock_open(session: Session, *, org_id: uuid.UUID, keys: Iterable[str]) -> dict[str, uuid.UUID]:
    """Lock the open patterns with these dedupe_keys (in key order); returns key -> id."""
    found: dict[str, uuid.UUID] = {}
    for chunk in chunked(sorted(set(keys))):
        query = (
            select(TABLE.c.dedupe_key, TABLE.c.id)
            .where(TABLE.c.org_id == org_id, TABLE.c.dedupe_key.in_(chunk), IS_OPEN)
            .order_by(TABLE.c.dedupe_key)
            .with_for_update()
        )
        found.update(session.execute(query).all())
    return found


def bump(session: Session, *, ids: Iterable[uuid.UUID], now: datetime) -> int:
    """Count one more occurrence of each pattern, seen now."""
    total = 0
    for chunk in chunked(sorted(set(ids))):
        result = session.execute(
            update(TABLE)
            .where(TABLE.c.id.in_(chunk))
            .values(occurrence_count=TABLE.c.occurrence_count + 1, last_seen_at=now, updated_at=now)
        )
        total += result.rowcount or 0
    return total


def _history_append(
    session: Session, *, to_status: str, at: datetime, by_api_key_id: uuid.UUID | None, note: str
) -> Any:
    """SQL that appends one history entry whose `from` is each row's own current status."""
    by = str(by_api_key_id) if by_api_key_id else None
    constants = {"to": to_status, "at": iso(at), "by_api_key_id": by, "note": note}
    pairs: list[Any] = ["from", TABLE.c.status]
    for name, value in constants.items():
        pairs += [name, cast(literal(value), String)]
    if session.get_bind().dialect.name == "postgresql":
        entry = func.jsonb_build_object(*pairs, "forced", false())
        return TABLE.c.status_history.op("||")(func.jsonb_build_array(entry))
    entry = func.json_object(*pairs, "forced", func.json("false"))
    return func.json_insert(TABLE.c.status_history, "$[#]", entry)


def close_open(
    session: Session,
    *,
    ids: Sequence[uuid.UUID],
    to_status: str,
    now: datetime,
    by_api_key_id: uuid.UUID | None,
    note: str,
) -> list[tuple[uuid.UUID, str]]:
    """Move still-open patterns to a closed status with a history note.

    Returns (id, previous status) pairs.
    """
    closed: list[tuple[uuid.UUID, str]] = []
    history = _history_append(
        session, to_status=to_status, at=now, by_api_key_id=by_api_key_id, note=note
    )
    for chunk in chunked(sorted(set(ids))):
        locked = list(
            session.execute(
                select(TABLE.c.id, TABLE.c.status)
                .where(TABLE.c.id.in_(chunk), IS_OPEN)
                .order_by(TABLE.c.dedupe_key)
                .with_for_update()
            )
        )
        if not locked:
            continue
        session.execute(
            update(TABLE)
            .where(TABLE.c.id.in_([row[0] for row in locked]), IS_OPEN)
            .values(status=to_status, status_history=history, updated_at=now)
        )
        closed.extend((row[0], row[1]) for row in locked)
    return closed
