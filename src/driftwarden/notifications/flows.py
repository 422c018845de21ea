"""Deliveries that commit between their steps (docs/reference/notifications.md, outbox).

Each batch claims its rows and commits the lease, sends without holding a transaction, then
records every outcome in one commit; so a caller must commit its outbox rows before it hands
them here. Signing, formats and the HTTP attempt itself are `delivery`'s.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Row, select
from sqlalchemy.orm import Session, sessionmaker

from driftwarden.clock import Clock
from driftwarden.notifications import outbox
from driftwarden.notifications.delivery import (
    DeliveryResult,
    jobs_for,
    lease_seconds_for,
    make_client,
    record,
    send_all,
    to_result,
)
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.settings import Settings

Claim = Callable[[Session, datetime], list[Row[Any]]]


def run_batch(
    session_factory: sessionmaker[Session],
    *,
    settings: Settings,
    clock: Clock,
    claim: Claim,
    concurrency: int = 8,
    client: httpx.Client | None = None,
) -> list[DeliveryResult]:
    """Claim (and commit the lease), send outside any transaction, then record in one commit."""
    with session_factory() as session:
        now = clock.now()
        jobs = jobs_for(session, claim(session, now), settings=settings, now=now)
        session.commit()
    if not jobs:
        return []
    owned = client is None
    client = client or make_client(settings, max_connections=concurrency)
    try:
        settlements = send_all(
            jobs, client=client, settings=settings, clock=clock, concurrency=concurrency
        )
    finally:
        if owned:
            client.close()
    with session_factory() as session:
        record(session, jobs, settlements, now=clock.now())
        session.commit()
    return [to_result(j, s) for j, s in zip(jobs, settlements, strict=True)]


def deliver_now(
    session_factory: sessionmaker[Session],
    *,
    outbox_ids: Sequence[uuid.UUID],
    settings: Settings,
    clock: Clock,
) -> list[DeliveryResult]:
    """Attempt these just-enqueued rows once, now; a row another drainer holds is reported as is."""
    ids = list(outbox_ids)
    if not ids:
        return []
    lease = lease_seconds_for(settings)

    def claim(session: Session, now: datetime) -> list[Row[Any]]:
        return outbox.claim(session, now=now, limit=len(ids), lease_seconds=lease, outbox_ids=ids)

    results = run_batch(
        session_factory, settings=settings, clock=clock, concurrency=len(ids), claim=claim
    )
    done = {r.outbox_id for r in results}
    missing = [i for i in ids if i not in done]
    if missing:
        with session_factory() as session:
            query = select(NotificationOutbox).where(NotificationOutbox.id.in_(missing))
            rows = {r.id: r for r in session.scalars(query)}
        results += [_as_is(rows[i]) for i in missing if i in rows]
    order = {outbox_id: n for n, outbox_id in enumerate(ids)}
    return sorted(results, key=lambda r: order[r.outbox_id])


def _as_is(row: NotificationOutbox) -> DeliveryResult:
    error = (
        None
        if row.status == "sent"
        else (
            "NOTIFICATION_OUTBOX_IN_PROGRESS: another drainer is delivering it"
            if row.status == "sending"
            else row.last_error_code
        )
    )
    return DeliveryResult(
        row.id,
        row.message_id,
        row.status == "sent",
        row.last_status_code,
        error,
        row.attempt_count,
        row.destination,
        row.endpoint_id,
        row.status,
        row.next_attempt_at,
    )


def drain(
    session_factory: sessionmaker[Session],
    *,
    settings: Settings,
    clock: Clock,
    limit: int,
    org_id: uuid.UUID | None = None,
    concurrency: int = 8,
) -> list[DeliveryResult]:
    """Reap lapsed leases, then deliver up to `limit` due rows once each (the admin drain)."""
    with session_factory() as session:
        outbox.reap_expired_leases(session, now=clock.now())
        session.commit()
    lease = lease_seconds_for(settings)

    def claim(session: Session, now: datetime) -> list[Row[Any]]:
        return outbox.claim(session, now=now, limit=limit, lease_seconds=lease, org_id=org_id)

    return run_batch(
        session_factory, settings=settings, clock=clock, concurrency=concurrency, claim=claim
    )
