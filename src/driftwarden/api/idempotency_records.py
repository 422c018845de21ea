"""The idempotency record's statements: the claim, the read of a taken key, the completion with
the rows that ride on it, the release and the purge. No ASGI here: the middleware
(api/idempotency.py) and the unit of work (api/unit_of_work.py) call these."""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, bindparam, case, delete, insert, null, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import Executable

from driftwarden.api import connection as request_connection
from driftwarden.api.envelope import error_body
from driftwarden.api.models import ApiAuditLog, IdempotencyRecord
from driftwarden.db.helpers import dialect_insert
from driftwarden.db.prune import BATCH_SIZE, MAX_BATCHES, delete_in_batches

KEPT_HEADERS = (b"content-type", b"location")
Response = tuple[int, list[tuple[bytes, bytes]], bytes]


@dataclass
class Claim:
    """Outcome of trying to claim a key: run the request, or answer with `response`.

    A run owns its record while `locked_until` is the value it set; completing matches on it, so
    a run whose lease lapsed and was taken over cannot also be kept.
    """

    record_id: uuid.UUID | None = None
    locked_until: datetime | None = None
    response: Response | None = None
    replayed: bool = False


CLAIMED_COLUMNS = (
    "id",
    "api_key_id",
    "method",
    "path",
    "idempotency_key",
    "request_hash",
    "state",
    "created_at",
    "locked_until",
    "expires_at",
)


@functools.cache
def claim_statement(dialect_name: str) -> Executable:
    """INSERT, or take over the existing record when it expired or its run's lease lapsed.

    RETURNING gives a row only when this request holds the key. Concurrent claimers queue on the
    row; each re-checks the condition against the committed winner, so one of them runs. Its
    commit does not await the disk (`request_connection.asynchronous_commit`). Built once per
    dialect, bound to each claim's record (`claim_` and a name of CLAIMED_COLUMNS).
    """
    table = IdempotencyRecord.__table__
    values = {c: bindparam(f"claim_{c}", type_=table.c[c].type) for c in CLAIMED_COLUMNS}
    asynchronous = request_connection.asynchronous_commit(dialect_name)
    insert = dialect_insert(dialect_name, table)
    if asynchronous is not None:
        insert = insert.from_select(
            list(values), select(*values.values()).select_from(asynchronous)
        )
    else:
        insert = insert.values(values)
    now = values["created_at"]
    expired = table.c.expires_at <= now
    lapsed = and_(
        table.c.state == "in_progress",
        table.c.locked_until <= now,
        table.c.request_hash == insert.excluded.request_hash,
    )
    fresh = {c: insert.excluded[c] for c in ("created_at", "expires_at")}
    return insert.on_conflict_do_update(
        index_elements=[table.c.api_key_id, table.c.method, table.c.path, table.c.idempotency_key],
        set_={
            "request_hash": insert.excluded.request_hash,
            "state": "in_progress",
            **{c: null() for c in ("response_status", "response_body", "response_headers")},
            "locked_until": insert.excluded.locked_until,
            **{c: case((expired, value), else_=table.c[c]) for c, value in fresh.items()},
        },
        where=or_(expired, lapsed),
    ).returning(table.c.id)


def _existing_statement() -> Executable:
    """The record that holds the key (None if it went away meanwhile: claim again)."""
    table = IdempotencyRecord.__table__
    key = ("api_key_id", "method", "path", "idempotency_key")
    return select(table).where(*(table.c[c] == bindparam(c, type_=table.c[c].type) for c in key))


EXISTING_RECORD = _existing_statement()


def complete_record(
    session: Session,
    state: dict[str, Any],
    claim: Claim,
    status: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    audit: dict[str, Any] | None = None,
    rows: Sequence[tuple[Table, dict[str, Any]]] = (),
) -> bool:
    """Store the response on the record, and the `audit` row and `rows` when given, in the
    caller's transaction; False if the run lost the record (then none of them was written).

    On Postgres they are one statement (each INSERT selects from the UPDATE's RETURNING).
    """
    kept = {k.decode().lower(): v.decode() for k, v in headers if k.lower() in KEPT_HEADERS}
    if state.get("idempotency_withhold") and status < 300:
        status, kept, body = _withheld(status, body)
    completed = {
        "record_id": claim.record_id,
        "claimed_until": claim.locked_until,
        "status": status,
        "body": body,
        "headers": kept,
    }
    riders = ([(ApiAuditLog.__table__, audit)] if audit is not None else []) + list(rows)
    if riders and session.get_bind().dialect.name == "postgresql":
        shapes = tuple((table, tuple(row)) for table, row in riders)
        bound = {f"row{n}_{key}": v for n, (_, row) in enumerate(riders) for key, v in row.items()}
        return session.execute(_completed_with(shapes), {**completed, **bound}).first() is not None
    if session.execute(_COMPLETE_RECORD, completed).rowcount != 1:
        return False
    for table, row in riders:
        session.execute(insert_into(table), row)
    return True


@functools.cache
def insert_into(table: Table) -> Executable:
    return insert(table)


def _complete_statement() -> Executable:
    """Core, built once: the ORM's bulk UPDATE machinery cost more than the statement."""
    table = IdempotencyRecord.__table__
    return (
        update(table)
        .where(
            table.c.id == bindparam("record_id", type_=table.c.id.type),
            table.c.state == "in_progress",
            table.c.locked_until == bindparam("claimed_until", type_=table.c.locked_until.type),
        )
        .values(
            state="completed",
            response_status=bindparam("status", type_=table.c.response_status.type),
            response_body=bindparam("body", type_=table.c.response_body.type),
            response_headers=bindparam("headers", type_=table.c.response_headers.type),
        )
    )


_COMPLETE_RECORD = _complete_statement()


@functools.cache
def _completed_with(shapes: tuple[tuple[Table, tuple[str, ...]], ...]) -> Executable:
    """Postgres: each row (a table and its columns) inserted from the completion's RETURNING, so
    only with it; built once per shape, bound as `row{n}_{column}`."""
    completed = _COMPLETE_RECORD.returning(IdempotencyRecord.__table__.c.id).cte("completed")
    inserts = []
    for n, (table, columns) in enumerate(shapes):
        values = select(*(bindparam(f"row{n}_{c}", type_=table.c[c].type) for c in columns))
        source = values.select_from(completed)
        inserts.append(insert(table).from_select(list(columns), source).cte(f"row{n}"))
    return select(completed.c.id).add_cte(*inserts)


def _withheld(status: int, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """What a replay of a secret-bearing success answers instead of repeating the secret."""
    try:
        resource_id = json.loads(body)["data"].get("id")
    except (ValueError, KeyError, TypeError, AttributeError):
        resource_id = None
    envelope = error_body(
        "IDEMPOTENCY_SECRET_WITHHELD",
        "the original request succeeded, but its response held a secret that is shown only "
        "once and is not stored; use the resource it created, or rotate/revoke it",
        {"original_status": status, "id": resource_id},
    )
    return 409, {"content-type": "application/json"}, json.dumps(envelope).encode()


def release(session_factory: sessionmaker[Session], record_id: uuid.UUID | None) -> None:
    """Give the key back: a run that failed before its response was stored."""
    with session_factory() as session:
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == record_id, IdempotencyRecord.state == "in_progress"
            )
        )
        session.commit()


def purge_expired(
    session_factory: sessionmaker[Session],
    *,
    now: datetime,
    batch_size: int = BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
) -> int:
    """Delete records past `expires_at`, oldest first, in short transactions; how many went.

    Expired records only take up room (a claim deletes an expired record it meets), so the
    worker, or `serve` when no worker runs, calls this now and then.
    """
    return delete_in_batches(
        session_factory,
        IdempotencyRecord,
        IdempotencyRecord.expires_at <= now,
        oldest_first=IdempotencyRecord.expires_at,
        batch_size=batch_size,
        max_batches=max_batches,
    )
