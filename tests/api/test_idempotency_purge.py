"""Expired idempotency records go in bounded batches, oldest first, and only expired ones."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from driftwarden.api import idempotency_records
from driftwarden.api.models import IdempotencyRecord
from driftwarden.worker import jobs as worker_jobs
from tests.support import wait_for

REPLAY = "/api/v1/system/notifications/outbox/dead-letter/replay"


def _keys(session_factory) -> list[str]:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        return sorted(session.scalars(select(IdempotencyRecord.idempotency_key)))


def _records(session_factory, now, expiring_in_hours) -> None:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        for n, hours in enumerate(expiring_in_hours):
            session.add(
                IdempotencyRecord(
                    api_key_id=uuid.uuid4(),
                    method="POST",
                    path="/api/v1/x",
                    idempotency_key=f"k{n}",
                    request_hash="h",
                    state="completed",
                    locked_until=now,
                    created_at=now - timedelta(hours=25),
                    expires_at=now + timedelta(hours=hours),
                )
            )
        session.commit()


def test_the_worker_purges_expired_keys_and_keeps_live_ones(
    client, session_factory, settings, clock, admin
) -> None:
    def replay(key: str):  # type: ignore[no-untyped-def]
        return client.post(
            REPLAY, headers={**admin.headers, "Idempotency-Key": key}, json={"dry_run": True}
        )

    assert replay("old").status_code == 200
    clock.advance(hours=settings.idempotency_ttl_hours, seconds=1)
    assert replay("new").status_code == 200
    [job] = [
        j
        for j in worker_jobs.build(session_factory, settings, clock, schedule=False)
        if j.name == "idempotency-purge"
    ]
    job.run()
    assert _keys(session_factory) == ["new"]
    again = replay("new")
    assert again.headers.get("idempotent-replayed") == "true"  # a live key still replays


def test_one_purge_deletes_at_most_a_batch_oldest_first(session_factory, clock) -> None:
    now = clock.now()
    _records(session_factory, now, (-1, -3, 1, -2))
    assert (
        idempotency_records.purge_expired(session_factory, now=now, batch_size=2, max_batches=1)
        == 2
    )
    assert _keys(session_factory) == ["k0", "k2"]  # k1 (-3 h) and k3 (-2 h) expired first


def test_the_job_works_off_a_backlog_over_several_runs(session_factory, clock) -> None:
    now = clock.now()
    _records(session_factory, now, (-5, -4, -3, -2, -1, 1))

    def purge() -> int:
        return idempotency_records.purge_expired(
            session_factory, now=now, batch_size=2, max_batches=2
        )

    assert purge() == 4
    assert _keys(session_factory) == ["k4", "k5"]  # the oldest expiries go first
    assert purge() == 1
    assert purge() == 0
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 1


def test_serve_purges_by_itself_when_no_worker_runs(app, session_factory, clock) -> None:
    """The app's own background purge, for deployments that run `serve` and nothing else."""
    now = clock.now()
    _records(session_factory, now, (-2, -1, 1))
    app.state.purge_every_seconds = 0.05
    with TestClient(app):
        assert wait_for(lambda: _keys(session_factory) == ["k2"], timeout=10)
