"""What `serve` keeps tidy by itself, so a deployment that runs no worker still stays bounded.

Expired idempotency records are purged every few minutes from each API process (bounded batches,
`SKIP LOCKED` on Postgres, so several processes and a worker never wait on each other).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from driftwarden.api import idempotency_records

log = logging.getLogger("driftwarden.api.housekeeping")
PURGE_EVERY_SECONDS = 300.0


async def purge_forever(app: FastAPI, *, every_seconds: float = PURGE_EVERY_SECONDS) -> None:
    """Purge, then sleep; a failure (the database is down, say) is logged and tried next time."""
    while True:
        await asyncio.sleep(every_seconds)
        try:
            purged = await run_in_threadpool(
                idempotency_records.purge_expired,
                app.state.session_factory,
                now=app.state.clock.now(),
            )
        except Exception:
            log.exception("idempotency purge failed; retrying in %.0f s", every_seconds)
            continue
        if purged:
            log.info("purged expired idempotency records", extra={"count": purged})


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Start the purge with the app, stop it with the app."""
    task = asyncio.create_task(purge_forever(app, every_seconds=app.state.purge_every_seconds))
    try:
        yield
    finally:
        task.cancel()
