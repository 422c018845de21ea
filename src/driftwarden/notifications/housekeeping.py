"""Housekeeping `driftwarden worker` runs: expired idempotency records are deleted in bounded batches."""

from __future__ import annotations

import json
import logging
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from driftwarden.api.models import IdempotencyRecord
from driftwarden.clock import Clock
from driftwarden.notifications.worker import Periodic
from driftwarden.settings import Settings

log = logging.getLogger("driftwarden.notifications.housekeeping")

EVERY_SECONDS = 300.0
BATCH_SIZE = 1000
# Per run: a large backlog is worked off over several runs, never by holding the drain loop for long.
MAX_BATCHES = 20


def purge_expired_idempotency_records(session_factory: sessionmaker[Session], *, now: datetime,
                                      batch_size: int = BATCH_SIZE, max_batches: int = MAX_BATCHES) -> int:
    """Delete records past `expires_at`, one short transaction per batch; returns how many went."""
    deleted = 0
    for _ in range(max_batches):
        batch = (select(IdempotencyRecord.id).where(IdempotencyRecord.expires_at <= now)
                 .order_by(IdempotencyRecord.expires_at).limit(batch_size)
                 .with_for_update(skip_locked=True))  # concurrent workers take different rows (Postgres)
        with session_factory() as session:
            count = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id.in_(batch))
                                    .execution_options(synchronize_session=False)).rowcount or 0
            session.commit()
        deleted += count
        if count < batch_size:
            break
    return deleted


def periodic(session_factory: sessionmaker[Session], settings: Settings, clock: Clock) -> Periodic:
    """The worker job: the idempotency table stays at about one TTL's worth of keys."""

    def run() -> None:
        purged = purge_expired_idempotency_records(session_factory, now=clock.now())
        if purged:
            log.info(json.dumps({"event": "idempotency_records_purged", "count": purged}))

    return Periodic(name="idempotency-purge", every_seconds=EVERY_SECONDS, run=run)
