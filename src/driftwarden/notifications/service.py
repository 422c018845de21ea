"""Outbox administration: listing, the dead-letter summary, single retry and bulk replay."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import case, func, literal, select, update
from sqlalchemy.orm import Session

from driftwarden.errors import Conflict, NotFound
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.notifications.outbox import origin
from driftwarden.notifications.schemas import (
    Bucket,
    DeadLetterSummary,
    OutboxRead,
    ReasonGroup,
    ReplayRead,
)

AGE_BUCKETS = ("lt_1h", "h_1_to_24", "d_1_to_7", "gte_7d")


def read(row: NotificationOutbox) -> OutboxRead:
    """The message with its URL cut to scheme and host (a path can carry a token)."""
    return OutboxRead.of(row, url_host=origin(row.url))


def _scoped(query, org_id: uuid.UUID | None):  # type: ignore[no-untyped-def]
    return query if org_id is None else query.where(NotificationOutbox.org_id == org_id)


def list_outbox(
    session: Session,
    *,
    org_id: uuid.UUID | None,
    status: str | None,
    event_type: str | None,
    limit: int,
    offset: int,
) -> tuple[list[NotificationOutbox], int]:
    query = _scoped(select(NotificationOutbox), org_id)
    if status is not None:
        query = query.where(NotificationOutbox.status == status)
    if event_type is not None:
        query = query.where(NotificationOutbox.event_type == event_type)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(NotificationOutbox.created_at.desc(), NotificationOutbox.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def dead_letter_summary(
    session: Session, *, org_id: uuid.UUID | None, now: datetime
) -> DeadLetterSummary:
    """Counts, the oldest age, reasons and age buckets, each computed by the database."""
    dead = NotificationOutbox.status == "dead"
    total, oldest = session.execute(
        _scoped(select(func.count(), func.min(NotificationOutbox.dead_at)).where(dead), org_id)
    ).one()
    reason = func.coalesce(NotificationOutbox.last_error_code, literal("UNKNOWN"))
    reasons = session.execute(
        _scoped(select(reason, func.count()).where(dead), org_id)
        .group_by(reason)
        .order_by(func.count().desc(), reason)
    ).all()
    dead_at = NotificationOutbox.dead_at
    bucket = case(
        (dead_at > now - timedelta(hours=1), literal("lt_1h")),
        (dead_at > now - timedelta(hours=24), literal("h_1_to_24")),
        (dead_at > now - timedelta(days=7), literal("d_1_to_7")),
        else_=literal("gte_7d"),
    )
    counts = dict(
        session.execute(
            _scoped(select(bucket, func.count()).where(dead), org_id).group_by(bucket)
        ).all()
    )
    return DeadLetterSummary(
        total_dead=total,
        oldest_dead_age_seconds=(now - oldest).total_seconds() if oldest else None,
        reason_groups=[ReasonGroup(reason=r, count=c) for r, c in reasons],
        age_buckets=[Bucket(bucket=b, count=counts.get(b, 0)) for b in AGE_BUCKETS],
    )


def get_outbox_or_404(
    session: Session, *, org_id: uuid.UUID | None, outbox_id: uuid.UUID
) -> NotificationOutbox:
    row = session.get(NotificationOutbox, outbox_id)
    if row is None or (org_id is not None and row.org_id != org_id):
        raise NotFound("outbox message not found", code="NOTIFICATION_OUTBOX_NOT_FOUND")
    return row


def _requeue_values(now: datetime) -> dict:
    return {
        "status": "pending",
        "next_attempt_at": now,
        "lease_expires_at": None,
        "dead_at": None,
        "updated_at": now,
        "attempt_count": case(
            (NotificationOutbox.status == "dead", 0), else_=NotificationOutbox.attempt_count
        ),
    }


def retry_outbox(
    session: Session, *, org_id: uuid.UUID | None, outbox_id: uuid.UUID, now: datetime
) -> NotificationOutbox:
    """Back to pending, due now; a dead row gets its attempts back.

    A row being sent is left alone.
    """
    row = get_outbox_or_404(session, org_id=org_id, outbox_id=outbox_id)
    changed = session.execute(
        update(NotificationOutbox)
        .where(NotificationOutbox.id == row.id, NotificationOutbox.status != "sending")
        .values(**_requeue_values(now))
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:
        raise Conflict(
            "this message is being delivered right now; retry later",
            code="NOTIFICATION_OUTBOX_IN_PROGRESS",
        )
    session.flush()
    session.refresh(row)
    return row


def replay_dead_letters(
    session: Session,
    *,
    org_id: uuid.UUID | None,
    event_type: str | None,
    limit: int,
    dry_run: bool,
    now: datetime,
) -> ReplayRead:
    """Requeue up to `limit` dead rows, oldest first, in one statement (row-locked on Postgres)."""
    query = _scoped(
        select(NotificationOutbox.id).where(NotificationOutbox.status == "dead"), org_id
    )
    if event_type is not None:
        query = query.where(NotificationOutbox.event_type == event_type)
    query = query.order_by(NotificationOutbox.dead_at, NotificationOutbox.id).limit(limit)
    ids = list(session.scalars(query if dry_run else query.with_for_update(skip_locked=True)))
    replayed = 0
    if ids and not dry_run:
        replayed = (
            session.execute(
                update(NotificationOutbox)
                .where(NotificationOutbox.id.in_(ids), NotificationOutbox.status == "dead")
                .values(**_requeue_values(now))
                .execution_options(synchronize_session=False)
            ).rowcount
            or 0
        )
    return ReplayRead(
        selected_count=len(ids), replayed_count=replayed, outbox_ids=ids, dry_run=dry_run
    )


OUTBOX_STATUSES = ("pending", "sending", "sent", "dead")


def count_by_status(session: Session, *, org_id: uuid.UUID) -> dict[str, int]:
    """Outbox messages per status in one grouped query (the console overview)."""
    rows = session.execute(
        select(NotificationOutbox.status, func.count())
        .where(NotificationOutbox.org_id == org_id)
        .group_by(NotificationOutbox.status)
    ).all()
    found = dict(rows)
    return {status: found.get(status, 0) for status in OUTBOX_STATUSES}
