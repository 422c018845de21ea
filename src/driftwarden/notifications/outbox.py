"""The durable outbox.

Written in the caller's transaction, claimed under a lease, settled per attempt.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Row, select, tuple_, update
from sqlalchemy.orm import Session

from driftwarden.db.helpers import chunked
from driftwarden.notifications import formats
from driftwarden.notifications.models import NotificationEndpoint, NotificationOutbox
from driftwarden.settings import Settings

ENV = "env"
ENDPOINT = "endpoint"
LEASE_EXPIRED = "LEASE_EXPIRED"


@dataclass(frozen=True)
class Destination:
    kind: str  # env | endpoint
    url: str
    format: str
    endpoint_id: uuid.UUID | None = None


def origin(url: str) -> str:
    """Scheme, host and port only: never the path (it may hold a token) nor a `user:password@`."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def new_message_id() -> str:
    """A Standard Webhooks message id.

    URL-safe, so it never contains the '.' the signature joins on.
    """
    return "msg_" + secrets.token_urlsafe(18)


def wants(event_types: Sequence[str] | None, event_type: str) -> bool:
    return not event_types or event_type in event_types


def check_destination_settings(settings: Settings) -> list[str]:
    """What pydantic cannot see on one NOTIFY_WEBHOOK_* field alone; each names its variable."""
    problems = [
        f"NOTIFY_WEBHOOK_EVENTS: unknown event type {e!r} (known: {', '.join(formats.EVENT_TYPES)})"
        for e in settings.webhook_event_filter
        if e not in formats.EVENT_TYPES
    ]
    if not settings.notify_webhook_url:
        problems += [
            f"{name} is set but NOTIFY_WEBHOOK_URL is not"
            for name, value in (
                ("NOTIFY_WEBHOOK_SECRET", settings.notify_webhook_secret),
                ("NOTIFY_WEBHOOK_EVENTS", settings.notify_webhook_events.strip()),
            )
            if value
        ]
    return problems


def destinations(
    session: Session,
    *,
    org_id: uuid.UUID,
    event_type: str,
    settings: Settings,
    endpoint_id: uuid.UUID | None = None,
) -> list[Destination]:
    """The env default (if its filter matches) plus the org's enabled endpoints.

    Only endpoints that want this event.
    """
    found: list[Destination] = []
    if (
        endpoint_id is None
        and settings.notify_webhook_url
        and wants(settings.webhook_event_filter, event_type)
    ):
        found.append(
            Destination(ENV, settings.webhook_url, settings.notify_webhook_format or "json")
        )
    query = select(NotificationEndpoint).where(
        NotificationEndpoint.org_id == org_id, NotificationEndpoint.enabled.is_(True)
    )
    if endpoint_id is not None:
        query = query.where(NotificationEndpoint.id == endpoint_id)
    for endpoint in session.scalars(
        query.order_by(NotificationEndpoint.created_at, NotificationEndpoint.id)
    ):
        if endpoint_id is not None or wants(endpoint.event_types, event_type):
            found.append(Destination(ENDPOINT, endpoint.url, endpoint.format, endpoint.id))
    return found


def enqueue(
    session: Session,
    *,
    org_id: uuid.UUID,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
    settings: Settings,
    request_id: str | None = None,
    endpoint_id: uuid.UUID | None = None,
) -> list[NotificationOutbox]:
    """One pending row per matching destination, in the caller's transaction.

    [] when none is configured.
    """
    if (
        event_type not in formats.EVENT_TYPES
    ):  # a typo here would silently bypass every event filter
        raise ValueError(f"unknown notification event type {event_type!r}")
    payload = formats.to_json_value(data)
    bodies: dict[str, bytes] = {}
    rows = []
    for dest in destinations(
        session, org_id=org_id, event_type=event_type, settings=settings, endpoint_id=endpoint_id
    ):
        if dest.format not in bodies:
            bodies[dest.format] = formats.render(
                dest.format, event_type=event_type, data=payload, now=now
            )
        rows.append(
            NotificationOutbox(
                org_id=org_id,
                event_type=event_type,
                message_id=new_message_id(),
                destination=dest.kind,
                endpoint_id=dest.endpoint_id,
                url=dest.url,
                format=dest.format,
                payload=payload,
                body=bodies[dest.format],
                status="pending",
                attempt_count=0,
                max_attempts=len(settings.retry_delays) + 1,
                next_attempt_at=now,
                request_id=request_id,
                created_at=now,
                updated_at=now,
            )
        )
    session.add_all(rows)
    session.flush()
    return rows


def reap_expired_leases(session: Session, *, now: datetime) -> int:
    """Rows whose drainer died mid-delivery go back to pending (at-least-once).

    On the last attempt, they go to dead.
    """
    lapsed = (NotificationOutbox.status == "sending", NotificationOutbox.lease_expires_at <= now)
    exhausted = NotificationOutbox.attempt_count >= NotificationOutbox.max_attempts
    common = {
        "lease_expires_at": None,
        "last_error_code": LEASE_EXPIRED,
        "updated_at": now,
        "last_error": "the drainer's lease lapsed before it recorded an outcome",
    }
    died = (
        session.execute(
            update(NotificationOutbox)
            .where(*lapsed, exhausted)
            .values(status="dead", dead_at=now, **common)
            .execution_options(synchronize_session=False)
        ).rowcount
        or 0
    )
    retried = (
        session.execute(
            update(NotificationOutbox)
            .where(*lapsed, ~exhausted)
            .values(status="pending", next_attempt_at=now, **common)
            .execution_options(synchronize_session=False)
        ).rowcount
        or 0
    )
    return died + retried


# What sending a claimed row needs: never the payload (decoded JSON nobody reads on this path).
CLAIMED = (
    NotificationOutbox.id,
    NotificationOutbox.message_id,
    NotificationOutbox.org_id,
    NotificationOutbox.event_type,
    NotificationOutbox.destination,
    NotificationOutbox.endpoint_id,
    NotificationOutbox.url,
    NotificationOutbox.body,
    NotificationOutbox.attempt_count,
    NotificationOutbox.max_attempts,
)


def claim(
    session: Session,
    *,
    now: datetime,
    limit: int,
    lease_seconds: float,
    outbox_ids: Iterable[uuid.UUID] | None = None,
    org_id: uuid.UUID | None = None,
) -> list[Row[Any]]:
    """Lease up to `limit` pending rows to this drainer in one statement; never to two at once.

    WITH picked AS (SELECT … FOR UPDATE SKIP LOCKED LIMIT n) UPDATE … WHERE id IN picked
    RETURNING: on Postgres drainers
    pass each other's locked rows; on SQLite the engine's BEGIN IMMEDIATE serialises writers, and
    the outer status check re-tests each row. Each claim bumps `attempt_count`, which doubles as
    the lease token when the outcome is recorded.
    """
    picked = select(NotificationOutbox.id).where(NotificationOutbox.status == "pending")
    if outbox_ids is not None:
        picked = picked.where(NotificationOutbox.id.in_(list(outbox_ids)))
    else:
        picked = picked.where(NotificationOutbox.next_attempt_at <= now)
    if org_id is not None:
        picked = picked.where(NotificationOutbox.org_id == org_id)
    # MATERIALIZED: evaluated once. Inlined as a subquery, Postgres may rescan it per row, and
    # SKIP LOCKED then passes over the rows this UPDATE just changed and picks more than `limit`.
    picked = (
        picked.order_by(NotificationOutbox.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("picked")
        .prefix_with("MATERIALIZED")
    )
    statement = (
        update(NotificationOutbox)
        .where(
            NotificationOutbox.id.in_(select(picked.c.id)),
            NotificationOutbox.status == "pending",
        )
        .values(
            status="sending",
            attempt_count=NotificationOutbox.attempt_count + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            updated_at=now,
        )
        .returning(*CLAIMED)
        .execution_options(synchronize_session=False)
    )
    return list(session.execute(statement))


@dataclass(frozen=True)
class Settlement:
    """The recorded result of one claimed attempt."""

    outbox_id: uuid.UUID
    attempt_count: int  # the lease token: only the claim that made this attempt may settle it
    status: str
    next_attempt_at: datetime | None
    status_code: int | None
    error_code: str | None
    error: str | None


def settle(session: Session, settlements: Sequence[Settlement], *, now: datetime) -> int:
    """Record outcomes in bulk: one UPDATE per distinct outcome (one for a batch of 2xx).

    A settlement whose lease was taken over (status or attempt moved on) is ignored.
    """
    groups: dict[tuple[Any, ...], list[tuple[uuid.UUID, int]]] = {}
    for s in settlements:
        outcome = (s.status, s.next_attempt_at, s.status_code, s.error_code, s.error)
        groups.setdefault(outcome, []).append((s.outbox_id, s.attempt_count))
    settled = 0
    for (status, next_at, code, error_code, error), leases in groups.items():
        values = {
            "status": status,
            "next_attempt_at": next_at or now,
            "lease_expires_at": None,
            "last_status_code": code,
            "last_error_code": error_code,
            "last_error": (error or None) and error[:2000],
            "sent_at": now if status == "sent" else None,
            "dead_at": now if status == "dead" else None,
            "updated_at": now,
        }
        for chunk in chunked(leases):
            settled += _update_leased(session, chunk, values)
    return settled


def _update_leased(
    session: Session, leases: Sequence[tuple[uuid.UUID, int]], values: dict[str, Any]
) -> int:
    """Only rows still `sending` under the attempt (the lease token) this drainer claimed."""
    table = NotificationOutbox.__table__
    result = session.execute(
        update(table)
        .where(
            tuple_(table.c.id, table.c.attempt_count).in_(leases),
            table.c.status == "sending",
        )
        .values(**values)
    )
    return result.rowcount if result.rowcount is not None and result.rowcount >= 0 else 0


def release(session: Session, held: Sequence[tuple[uuid.UUID, int]], *, now: datetime) -> None:
    """Hand leased rows back untouched-but-attempted (shutdown): pending again, due now."""
    values = {
        "status": "pending",
        "lease_expires_at": None,
        "next_attempt_at": now,
        "updated_at": now,
    }
    for chunk in chunked(held):
        _update_leased(session, chunk, values)
