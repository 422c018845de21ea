"""Bounded deletes for retention: old rows go in short batches, never in one long transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session, sessionmaker

BATCH_SIZE = 1000
# Per call: a large backlog is worked off over several runs, never by holding a worker for long.
MAX_BATCHES = 20


def delete_in_batches(
    session_factory: sessionmaker[Session],
    model: Any,
    *where: ColumnElement[bool],
    oldest_first: ColumnElement[Any],
    batch_size: int = BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
) -> int:
    """Delete the rows of `model` matching `where`, oldest first, one transaction per batch.

    Concurrent workers lock different rows (`SKIP LOCKED` on Postgres), so two pruners never
    wait on each other; returns how many rows went.
    """
    deleted = 0
    for _ in range(max_batches):
        batch = (
            select(model.id)
            .where(*where)
            .order_by(oldest_first)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        with session_factory() as session:
            result = session.execute(
                delete(model)
                .where(model.id.in_(batch))
                .execution_options(synchronize_session=False)
            )
            session.commit()
        count = result.rowcount or 0
        deleted += count
        if count < batch_size:
            break
    return deleted
