"""Issue patterns: create, read, change status, upsert by dedupe key.

Callers own the transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from driftwarden.errors import Conflict, Forbidden, Invalid, NotFound
from driftwarden.patterns import lifecycle, notify, store
from driftwarden.patterns.models import IssuePattern
from driftwarden.patterns.promotion import promote_drift
from driftwarden.patterns.schemas import PRIORITIES, PatternCreate, PatternUpdate
from driftwarden.settings import Settings

# An open pattern can close between our INSERT seeing it and our lock reaching it;
# then insert again.
CLAIM_ATTEMPTS = 3

__all__ = [
    "create_pattern",
    "get_pattern",
    "get_pattern_or_404",
    "list_patterns",
    "promote_drift",
    "update_pattern",
    "upsert_open_pattern",
]


def get_pattern(
    session: Session, *, org_id: uuid.UUID, pattern_id: uuid.UUID, for_update: bool = False
) -> IssuePattern | None:
    query = select(IssuePattern).where(IssuePattern.id == pattern_id, IssuePattern.org_id == org_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return session.scalars(query).first()


def get_pattern_or_404(
    session: Session, *, org_id: uuid.UUID, pattern_id: uuid.UUID, for_update: bool = False
) -> IssuePattern:
    pattern = get_pattern(session, org_id=org_id, pattern_id=pattern_id, for_update=for_update)
    if pattern is None:
        raise NotFound("issue pattern not found", code="PATTERN_NOT_FOUND")
    return pattern


def list_patterns(
    session: Session,
    *,
    org_id: uuid.UUID,
    agent_id: uuid.UUID | None = None,
    primary_tag: str | None = None,
    status: str | None = None,
    priority: str | None = None,
    open_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[IssuePattern], int]:
    query = select(IssuePattern).where(IssuePattern.org_id == org_id)
    for column, value in (
        (IssuePattern.agent_id, agent_id),
        (IssuePattern.primary_tag, primary_tag),
        (IssuePattern.status, status),
        (IssuePattern.priority, priority),
    ):
        if value is not None:
            query = query.where(column == value)
    if open_only:
        query = query.where(IssuePattern.status.not_in(lifecycle.CLOSED_STATUSES))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(IssuePattern.last_seen_at.desc(), IssuePattern.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def create_pattern(
    session: Session,
    *,
    org_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    body: PatternCreate,
    now: datetime,
    api_key_id: uuid.UUID | None,
) -> IssuePattern:
    """A new pattern; 409 when an open one already holds its dedupe_key."""
    row = store.new_row(
        org_id=org_id,
        agent_id=agent_id,
        title=body.title,
        primary_tag=body.primary_tag,
        priority=body.priority,
        evidence=body.evidence,
        dedupe_key=body.dedupe_key,
        now=now,
        related_tags=body.related_tags,
        owner=body.owner,
        api_key_id=api_key_id,
        note=body.note,
    )
    if body.dedupe_key is not None and not store.insert_open(session, [row]):
        existing = store.lock_open(session, org_id=org_id, keys=[body.dedupe_key])
        raise Conflict(
            "an open pattern with this dedupe_key already exists",
            code="PATTERN_EXISTS",
            details={"pattern_id": str(existing.get(body.dedupe_key, "")) or None},
        )
    if body.dedupe_key is None:
        session.add(IssuePattern(**row))
        session.flush()
    pattern = session.get(IssuePattern, row["id"])
    assert pattern is not None
    return pattern


def upsert_open_pattern(
    session: Session,
    *,
    org_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    dedupe_key: str,
    primary_tag: str,
    title: str,
    priority: str,
    evidence: dict[str, Any],
    now: datetime,
    related_tags: Iterable[str] = (),
) -> tuple[IssuePattern, bool]:
    """The one open pattern for `dedupe_key`: created, or reused.

    A reused pattern gets one more occurrence and the latest evidence.

    Concurrent callers converge: the partial unique index lets one INSERT win, the others see
    the conflict, lock the winner's row and bump it.
    """
    row = store.new_row(
        org_id=org_id,
        agent_id=agent_id,
        title=title,
        primary_tag=primary_tag,
        priority=priority,
        evidence=evidence,
        dedupe_key=dedupe_key,
        now=now,
        related_tags=related_tags,
    )
    pattern_id, created = _claim_open(session, org_id=org_id, row=row)
    pattern = session.scalars(
        select(IssuePattern)
        .where(IssuePattern.id == pattern_id)
        .execution_options(populate_existing=True)
    ).one()
    if not created:
        pattern.occurrence_count += 1
        pattern.last_seen_at = pattern.updated_at = now
        pattern.evidence = evidence
        session.flush()
    return pattern, created


def _claim_open(
    session: Session, *, org_id: uuid.UUID, row: dict[str, Any]
) -> tuple[uuid.UUID, bool]:
    """Insert the open pattern, or lock the one holding its key.

    Again when that one closed in between.
    """
    key = row["dedupe_key"]
    for _ in range(CLAIM_ATTEMPTS):
        if store.insert_open(session, [row]):
            return row["id"], True
        found = store.lock_open(session, org_id=org_id, keys=[key])
        if key in found:
            return found[key], False
    raise RuntimeError(f"no open pattern could be claimed for dedupe_key {key!r}; retry")


_NOT_NULL = ("title", "priority", "related_tags", "status")


def update_pattern(
    session: Session,
    *,
    pattern: IssuePattern,
    body: PatternUpdate,
    now: datetime,
    api_key_id: uuid.UUID | None,
    can_force: bool,
    actor_role: str,
    settings: Settings,
    request_id: str | None,
) -> dict[str, Any] | None:
    """Apply a PATCH; a status change is checked, recorded and notified.

    Returns the queued notification.
    """
    changes = body.model_dump(exclude_unset=True, exclude={"note", "force"})
    for name in _NOT_NULL:
        if name in changes and changes[name] is None:
            raise Invalid.for_field(name, "may not be null")
    if body.note is not None and changes.get("status") in (None, pattern.status):
        raise Invalid.for_field("note", "a note is recorded with a status change; send status too")
    target = changes.pop("status", None)
    for name, value in changes.items():
        setattr(pattern, name, (value or None) if name == "owner" else value)
    pattern.updated_at = now
    notification = None
    if target is not None and target != pattern.status:
        entry = _change_status(
            session,
            pattern=pattern,
            target=target,
            body=body,
            now=now,
            api_key_id=api_key_id,
            can_force=can_force,
            actor_role=actor_role,
        )
        notification = notify.queue(
            session,
            org_id=pattern.org_id,
            event_type=notify.STATUS_CHANGED,
            data=notify.status_changed_data(pattern, entry),
            now=now,
            settings=settings,
            request_id=request_id,
        )
    session.flush()
    return notification


def _change_status(
    session: Session,
    *,
    pattern: IssuePattern,
    target: str,
    body: PatternUpdate,
    now: datetime,
    api_key_id: uuid.UUID | None,
    can_force: bool,
    actor_role: str,
) -> dict[str, Any]:
    allowed = lifecycle.can_transition(pattern.status, target)
    if not allowed and not body.force:
        raise Conflict(
            f"a pattern cannot move from {pattern.status} to {target}",
            code="PATTERN_INVALID_TRANSITION",
            details={
                "from": pattern.status,
                "to": target,
                "allowed": sorted(lifecycle.allowed_targets(pattern.status)),
            },
        )
    if not allowed and not can_force:
        raise Forbidden(
            "only a global admin key may force a status change",
            details={"required_role": "admin (global)", "actual_role": actor_role},
        )
    entry = lifecycle.history_entry(
        from_status=pattern.status,
        to_status=target,
        at=now,
        by_api_key_id=api_key_id,
        note=body.note,
        forced=not allowed,
    )
    try:
        with (
            session.begin_nested()
        ):  # flushes earlier edits first, so only the status change can conflict
            pattern.status = target
            pattern.status_history = [*pattern.status_history, entry]
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "another open pattern already holds this dedupe_key",
            code="PATTERN_DEDUPE_CONFLICT",
            details={"dedupe_key": pattern.dedupe_key},
        ) from exc
    return entry


def count_open_by_priority(session: Session, *, org_id: uuid.UUID) -> dict[str, int]:
    """Open patterns per priority in one grouped query (the console overview)."""
    rows = session.execute(
        select(IssuePattern.priority, func.count())
        .where(IssuePattern.org_id == org_id, IssuePattern.status.not_in(lifecycle.CLOSED_STATUSES))
        .group_by(IssuePattern.priority)
    ).all()
    found = dict(rows)
    return {priority: found.get(priority, 0) for priority in PRIORITIES}
