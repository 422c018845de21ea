"""Every job `driftwarden worker` runs between drain rounds, in the order it runs them.

`JOBS` always run; `SCHEDULE_JOBS` are added by `driftwarden worker --schedule` (the built-in
scheduler, docs/reference/scheduler.md). A job is built from a factory taking the worker's
session factory, settings and clock; nothing registers itself on import.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from driftwarden.api import idempotency_records
from driftwarden.clock import Clock
from driftwarden.scheduler import flows as scheduler_flows
from driftwarden.scheduler import service as scheduler_service
from driftwarden.scheduler import watchdog
from driftwarden.settings import Settings
from driftwarden.worker import retention
from driftwarden.worker.runner import Periodic

log = logging.getLogger("driftwarden.worker.jobs")

JobFactory = Callable[[sessionmaker[Session], Settings, Clock], Periodic]

WATCHDOG_EVERY_SECONDS = 60.0
PURGE_EVERY_SECONDS = 300.0
AUTORUN_EVERY_SECONDS = 15.0
RETENTION_EVERY_SECONDS = 600.0


def schedule_watchdog(
    session_factory: sessionmaker[Session], settings: Settings, clock: Clock
) -> Periodic:
    """The dead man's switch over every enabled schedule (docs/reference/scheduler.md)."""
    tracker = watchdog.WatchTracker()

    def run() -> None:
        watchdog.tick(session_factory, settings=settings, clock=clock, tracker=tracker)

    return Periodic(name="schedule-watchdog", every_seconds=WATCHDOG_EVERY_SECONDS, run=run)


def idempotency_purge(
    session_factory: sessionmaker[Session], settings: Settings, clock: Clock
) -> Periodic:
    """The idempotency table stays at about one TTL's worth of keys (docs/reference/api.md)."""

    def run() -> None:
        purged = idempotency_records.purge_expired(session_factory, now=clock.now())
        if purged:
            log.info(json.dumps({"event": "idempotency_records_purged", "count": purged}))

    return Periodic(name="idempotency-purge", every_seconds=PURGE_EVERY_SECONDS, run=run)


def retention_prune(
    session_factory: sessionmaker[Session], settings: Settings, clock: Clock
) -> Periodic:
    """Old sent messages, audit rows, notify events and trigger runs go, in bounded batches."""

    def run() -> None:
        retention.prune(session_factory, settings=settings, now=clock.now())

    return Periodic(name="retention", every_seconds=RETENTION_EVERY_SECONDS, run=run)


def schedule_autorun(
    session_factory: sessionmaker[Session], settings: Settings, clock: Clock
) -> Periodic:
    """Every enabled org's schedule run, shortly after each of its windows opens."""
    delay, tracker = scheduler_service.random_delay(), scheduler_service.DueTracker()

    def run() -> None:
        scheduler_flows.run_due_schedules(
            session_factory, settings=settings, clock=clock, delay=delay, tracker=tracker
        )

    return Periodic(name="schedule-autorun", every_seconds=AUTORUN_EVERY_SECONDS, run=run)


JOBS: tuple[JobFactory, ...] = (schedule_watchdog, idempotency_purge, retention_prune)
SCHEDULE_JOBS: tuple[JobFactory, ...] = (schedule_autorun,)


def build(
    session_factory: sessionmaker[Session], settings: Settings, clock: Clock, *, schedule: bool
) -> list[Periodic]:
    """One job from each factory of `JOBS`, then of `SCHEDULE_JOBS` when `schedule` is set."""
    factories = JOBS + (SCHEDULE_JOBS if schedule else ())
    return [factory(session_factory, settings, clock) for factory in factories]
