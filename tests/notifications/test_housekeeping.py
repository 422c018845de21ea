"""Expired idempotency records are purged by a worker job, in bounded batches, and only expired ones."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

import driftwarden.cli  # noqa: F401  (registers every domain's worker jobs, as `driftwarden worker` does)
from driftwarden.api.models import IdempotencyRecord
from driftwarden.notifications import housekeeping
from driftwarden.notifications.worker import periodic_jobs

REPLAY = "/api/v1/system/notifications/outbox/dead-letter/replay"


def _keys(session_factory) -> list[str]:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        return sorted(session.scalars(select(IdempotencyRecord.idempotency_key)))


def test_the_worker_purges_expired_keys_and_keeps_live_ones(client, session_factory, settings, clock, admin) -> None:
    def replay(key: str):  # type: ignore[no-untyped-def]
        return client.post(REPLAY, headers={**admin.headers, "Idempotency-Key": key}, json={"dry_run": True})

    assert replay("old").status_code == 200
    clock.advance(hours=settings.idempotency_ttl_hours, seconds=1)
    assert replay("new").status_code == 200
    jobs = periodic_jobs(session_factory, settings, clock, schedule=False)
    [job] = [j for j in jobs if j.name == "idempotency-purge"]
    job.run()
    assert _keys(session_factory) == ["new"]
    again = replay("new")
    assert again.headers.get("idempotent-replayed") == "true"  # a live key still replays after the purge


def test_purge_works_in_bounded_batches(session_factory, clock) -> None:
    now = clock.now()
    with session_factory() as session:
        for n, hours in enumerate((-5, -4, -3, -2, -1, 1)):
            session.add(IdempotencyRecord(
                api_key_id=uuid.uuid4(), method="POST", path="/api/v1/x", idempotency_key=f"k{n}",
                request_hash="h", state="completed", locked_until=now, created_at=now - timedelta(hours=25),
                expires_at=now + timedelta(hours=hours)))
        session.commit()
    purge = housekeeping.purge_expired_idempotency_records
    assert purge(session_factory, now=now, batch_size=2, max_batches=2) == 4
    assert _keys(session_factory) == ["k4", "k5"]  # the oldest expiries go first
    assert purge(session_factory, now=now, batch_size=2, max_batches=2) == 1
    assert purge(session_factory, now=now, batch_size=2, max_batches=2) == 0
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1
