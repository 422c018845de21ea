"""The built-in scheduler (SPEC §8.2), and the schedule run of §5.6 without HTTP.

`driftwarden worker --schedule` runs, for every org whose policy is enabled, the same service
path as `POST /system/contracts/drift/schedule-run` (the route calls `schedule_run` below too)
shortly after each window opens. Workers need no API key and no base URL. Each worker waits its
own random delay into the window and skips a window that already executed; when two still race,
the trigger's window claim (§5.2, a partial unique index) lets one execute and records the other
as `deduped`, so any number of workers execute each window once.
"""

from __future__ import annotations

import json
import logging
import random
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased, sessionmaker

from driftwarden.clock import Clock
from driftwarden.notifications.worker import Periodic
from driftwarden.scheduler import notify as notify_service
from driftwarden.scheduler import policy as policy_service
from driftwarden.scheduler import trigger as trigger_service
from driftwarden.scheduler import windows
from driftwarden.scheduler.models import DriftPolicy, TriggerRun
from driftwarden.scheduler.schemas import (NotifyCreate, NotifyRead, ScheduleRunCreate, ScheduleRunRead,
                                           TriggerCreate, TriggerRead)
from driftwarden.scheduler.summary import newest_trigger_value
from driftwarden.settings import Settings

log = logging.getLogger("driftwarden.scheduler.autorun")
EVERY_SECONDS = 15.0
MAX_DELAY_SECONDS = 60.0
TICK_BUDGET_SECONDS = 30.0


def run_trigger(session: Session, *, org_id: uuid.UUID, body: TriggerCreate, settings: Settings, clock: Clock,
                request_id: str | None, idempotency_key: str | None, api_key_id: uuid.UUID | None) -> TriggerRead:
    """Run and commit one trigger (the commit ends the window claim's transaction)."""
    policy = policy_service.effective_policy(session, org_id=org_id)
    ctx = trigger_service.TriggerContext(now=clock.now(), settings=settings, request_id=request_id,
                                         idempotency_key=idempotency_key, api_key_id=api_key_id)
    result = trigger_service.run_trigger(session, org_id=org_id, body=body, policy=policy, ctx=ctx)
    session.commit()
    return result


def run_notify(session: Session, *, session_factory: sessionmaker[Session], org_id: uuid.UUID, body: NotifyCreate,
               settings: Settings, clock: Clock, request_id: str | None) -> NotifyRead:
    """Plan and commit the outbox rows, deliver, record and commit (§5.4)."""
    policy = policy_service.effective_policy(session, org_id=org_id)
    plan = notify_service.plan_notify(session, org_id=org_id, schedule_name=body.schedule_name,
                                      agent_id=body.agent_id, window_days=body.window_days, dry_run=body.dry_run,
                                      force_notify=body.force_notify, policy=policy, now=clock.now(),
                                      settings=settings, request_id=request_id)
    if plan.outbox_ids:  # the messages must be committed before anyone delivers them
        session.commit()
    deliveries = notify_service.deliver(plan, session_factory=session_factory, settings=settings, clock=clock)
    result = notify_service.finish_notify(session, plan=plan, deliveries=deliveries, now=clock.now(),
                                          request_id=request_id)
    session.commit()
    return result


def schedule_run(session: Session, *, session_factory: sessionmaker[Session], org_id: uuid.UUID,
                 body: ScheduleRunCreate, settings: Settings, clock: Clock, request_id: str | None,
                 idempotency_key: str | None, api_key_id: uuid.UUID | None) -> ScheduleRunRead:
    """§5.6: the trigger, then the notify with the trigger's schedule, the same dry_run and agent."""
    trigger_body = TriggerCreate(**body.model_dump(include=set(TriggerCreate.model_fields) - {"org_id"}))
    trigger = run_trigger(session, org_id=org_id, body=trigger_body, settings=settings, clock=clock,
                          request_id=request_id, idempotency_key=idempotency_key, api_key_id=api_key_id)
    notify_body = NotifyCreate(schedule_name=trigger.schedule_name, agent_id=body.agent_id,
                               window_days=body.summary_window_days, dry_run=body.dry_run,
                               force_notify=body.force_notify)
    notified = run_notify(session, session_factory=session_factory, org_id=org_id, body=notify_body,
                          settings=settings, clock=clock, request_id=request_id)
    return ScheduleRunRead(org_id=org_id, schedule_name=trigger.schedule_name, window_minutes=trigger.window_minutes,
                           summary_window_days=body.summary_window_days, dry_run=body.dry_run, trigger=trigger,
                           notify=notified)


@dataclass(frozen=True)
class DueRun:
    org_id: uuid.UUID
    schedule_name: str
    window: windows.Window

    @property
    def idempotency_key(self) -> str:
        """Derived from org, schedule and window: the same on every worker."""
        epoch = int((self.window.start - windows.EPOCH).total_seconds())
        return f"driftwarden-autorun:{self.org_id}:{self.schedule_name}:{self.window.minutes}:{epoch}"


Delay = Callable[[uuid.UUID, windows.Window], float]


def random_delay(seed: str | None = None, max_seconds: float = MAX_DELAY_SECONDS) -> Delay:
    """A delay into each window, random per worker but stable for one (org, window) within it."""
    seed = seed or secrets.token_hex(8)

    def delay(org_id: uuid.UUID, window: windows.Window) -> float:
        cap = min(max_seconds, window.minutes * 60 * 0.05)
        return random.Random(f"{seed}|{org_id}|{window.start.isoformat()}").uniform(0, cap)

    return delay


def retry_after(window: windows.Window) -> timedelta:
    """How long a failed window waits before the next attempt: 5 % of the window, 1-15 minutes."""
    return timedelta(seconds=min(900.0, max(60.0, window.minutes * 3.0)))


def due_runs(session: Session, *, now: datetime, delay: Delay) -> list[DueRun]:
    """Enabled orgs whose window opened (plus delay) and has not executed, unless it just failed.

    One query: each policy joined to its schedule's newest org-wide trigger (key, outcome, time).
    """
    last = aliased(TriggerRun)
    newest = newest_trigger_value(TriggerRun.id, org_id=DriftPolicy.org_id, schedule_name=DriftPolicy.schedule_name,
                                  executed_only=False, org_wide_only=True)
    rows = session.execute(
        select(DriftPolicy.org_id, DriftPolicy.schedule_name, DriftPolicy.schedule_window_minutes,
               last.dedupe_key, last.outcome, last.started_at)
        .select_from(DriftPolicy).outerjoin(last, last.id == newest)
        .where(DriftPolicy.enabled.is_(True), DriftPolicy.promote_to_patterns.is_(True))
        .order_by(DriftPolicy.org_id)).all()
    due = []
    for org_id, name, minutes, last_key, last_outcome, last_started in rows:
        window = windows.window_for(now, minutes)
        if now < window.start + timedelta(seconds=delay(org_id, window)):
            continue
        if last_key == windows.dedupe_key(org_id=org_id, schedule_name=name, window=window, agent_id=None):
            if last_outcome in ("executed", "deduped"):
                continue
            if last_outcome == "failed" and now - last_started < retry_after(window):
                continue
        due.append(DueRun(org_id, name, window))
    return due


@dataclass
class AutorunReport:
    due: int = 0
    executed: int = 0
    deduped: int = 0
    failed: int = 0
    errors: int = 0
    deferred: int = 0


def tick(session_factory: sessionmaker[Session], *, settings: Settings, clock: Clock, delay: Delay,
         budget_seconds: float = TICK_BUDGET_SECONDS) -> AutorunReport:
    """Run every due window once; what the budget leaves over is still due at the next tick."""
    with session_factory() as session:
        due = due_runs(session, now=clock.now(), delay=delay)
    report = AutorunReport(due=len(due))
    started = time.monotonic()
    for n, run in enumerate(due):
        if time.monotonic() - started > budget_seconds:
            report.deferred = len(due) - n
            break
        _run_one(session_factory, run, settings=settings, clock=clock, report=report)
    return report


def _run_one(session_factory: sessionmaker[Session], run: DueRun, *, settings: Settings, clock: Clock,
             report: AutorunReport) -> None:
    """One org's schedule run; its failure is logged and counted, never stops the others."""
    request_id = f"autorun-{uuid.uuid4().hex[:16]}"
    body = ScheduleRunCreate(org_id=run.org_id, schedule_name=run.schedule_name, window_minutes=run.window.minutes)
    try:
        with session_factory() as session:
            result = schedule_run(session, session_factory=session_factory, org_id=run.org_id, body=body,
                                  settings=settings, clock=clock, request_id=request_id,
                                  idempotency_key=run.idempotency_key, api_key_id=None)
    except Exception:
        report.errors += 1
        log.exception(json.dumps({"event": "scheduled_run_error", "org_id": str(run.org_id),
                                  "request_id": request_id}))
        return
    outcome = result.trigger.outcome
    report.executed += outcome == "executed"
    report.deduped += outcome == "deduped"
    report.failed += outcome == "failed"
    log.info(json.dumps(_log_fields(run, request_id, outcome, result.notify.outcome)))


def _log_fields(run: DueRun, request_id: str, outcome: str, notify_outcome: str) -> dict[str, Any]:
    return {"event": "scheduled_run", "org_id": str(run.org_id), "schedule_name": run.schedule_name,
            "request_id": request_id, "window_start": windows.iso_z(run.window.start), "outcome": outcome,
            "notify_outcome": notify_outcome}


def periodic(session_factory: sessionmaker[Session], settings: Settings, clock: Clock) -> Periodic:
    """The worker job behind `driftwarden worker --schedule`."""
    delay = random_delay()

    def run() -> None:
        tick(session_factory, settings=settings, clock=clock, delay=delay)

    return Periodic(name="schedule-autorun", every_seconds=EVERY_SECONDS, run=run)
