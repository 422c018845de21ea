"""Scheduler operations that commit between their steps (docs/reference/scheduler.md).

The trigger commits its window claim before the notify plans; the notify commits its outbox rows
before delivering them and commits again to record the outcome. The routes and the built-in
scheduler (`driftwarden worker --schedule`) run these same functions; each step's service
function only adds and flushes.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from driftwarden.clock import Clock
from driftwarden.scheduler import notify as notify_service
from driftwarden.scheduler import policy as policy_service
from driftwarden.scheduler import service as scheduler_service
from driftwarden.scheduler import summary as summary_service
from driftwarden.scheduler import trigger as trigger_service
from driftwarden.scheduler import windows
from driftwarden.scheduler.schemas import (
    NotifyCreate,
    NotifyRead,
    PolicyRead,
    ScheduleRunCreate,
    ScheduleRunRead,
    SummaryRead,
    TriggerCreate,
    TriggerRead,
)
from driftwarden.scheduler.summary import CooldownState
from driftwarden.settings import Settings

log = logging.getLogger("driftwarden.scheduler.flows")
DUE_BUDGET_SECONDS = 30.0
PROMOTED = frozenset({"executed", "failed"})  # outcomes of a trigger whose promotion ran


def trigger(
    session: Session,
    *,
    org_id: uuid.UUID,
    body: TriggerCreate,
    settings: Settings,
    clock: Clock,
    request_id: str | None,
    idempotency_key: str | None,
    api_key_id: uuid.UUID | None,
    policy: PolicyRead | None = None,
) -> TriggerRead:
    """One trigger under the org's policy (read here unless the caller has it).

    The caller commits (the trigger route: with its response).
    """
    policy = policy or policy_service.effective_policy(session, org_id=org_id)
    ctx = _context(settings, clock, request_id, idempotency_key, api_key_id)
    return trigger_service.run_trigger(session, org_id=org_id, body=body, policy=policy, ctx=ctx)


def _context(
    settings: Settings,
    clock: Clock,
    request_id: str | None,
    idempotency_key: str | None,
    api_key_id: uuid.UUID | None,
    summary: summary_service.SummaryAhead | None = None,
) -> trigger_service.TriggerContext:
    return trigger_service.TriggerContext(
        now=clock.now(),
        settings=settings,
        request_id=request_id,
        idempotency_key=idempotency_key,
        api_key_id=api_key_id,
        summary=summary,
    )


def run_notify(
    session: Session,
    *,
    session_factory: sessionmaker[Session],
    org_id: uuid.UUID,
    body: NotifyCreate,
    settings: Settings,
    clock: Clock,
    request_id: str | None,
    policy: PolicyRead | None = None,
    summary: tuple[SummaryRead, CooldownState] | None = None,
    write_event: notify_service.EventWriter | None = None,
) -> NotifyRead:
    """Plan and commit the outbox rows, deliver, record (the anomaly notify); the caller commits.

    `summary`: the summary and cooldown row already read in this transaction, else read here.
    `write_event` inserts the notify event row (`notify.record_event`).
    """
    policy = policy or policy_service.effective_policy(session, org_id=org_id)
    plan = notify_service.plan_notify(
        session,
        org_id=org_id,
        schedule_name=body.schedule_name,
        agent_id=body.agent_id,
        window_days=body.window_days,
        dry_run=body.dry_run,
        force_notify=body.force_notify,
        policy=policy,
        now=clock.now(),
        settings=settings,
        request_id=request_id,
        summary=summary,
    )
    if plan.outbox_ids:  # the messages must be committed before anyone delivers them
        session.commit()
    deliveries = notify_service.deliver(
        plan, session_factory=session_factory, settings=settings, clock=clock
    )
    return notify_service.finish_notify(
        session,
        plan=plan,
        deliveries=deliveries,
        now=clock.now(),
        request_id=request_id,
        write_event=write_event,
    )


def schedule_run(
    session: Session,
    *,
    session_factory: sessionmaker[Session],
    org_id: uuid.UUID,
    body: ScheduleRunCreate,
    settings: Settings,
    clock: Clock,
    request_id: str | None,
    idempotency_key: str | None,
    api_key_id: uuid.UUID | None,
    write_event: notify_service.EventWriter | None = None,
) -> ScheduleRunRead:
    """The trigger (scoped to `agent_id`), then the notify with the trigger's schedule, the same
    dry_run and `escalation_agent_id` as its escalation target."""
    trigger_fields = set(TriggerCreate.model_fields) - {"org_id"}
    trigger_body = TriggerCreate(**body.model_dump(include=trigger_fields))
    ahead = summary_service.SummaryAhead(window_days=body.summary_window_days)
    trigger, policy = _schedule_trigger(
        session,
        org_id=org_id,
        body=trigger_body,
        settings=settings,
        clock=clock,
        request_id=request_id,
        idempotency_key=idempotency_key,
        api_key_id=api_key_id,
        summary=ahead,
    )
    notify_body = NotifyCreate(
        schedule_name=trigger.schedule_name,
        agent_id=body.escalation_agent_id,
        window_days=body.summary_window_days,
        dry_run=body.dry_run,
        force_notify=body.force_notify,
    )
    notified = run_notify(
        session,
        session_factory=session_factory,
        org_id=org_id,
        body=notify_body,
        settings=settings,
        clock=clock,
        request_id=request_id,
        policy=policy,
        summary=ahead.found,
        write_event=write_event,
    )
    return ScheduleRunRead(
        org_id=org_id,
        agent_id=body.agent_id,
        escalation_agent_id=body.escalation_agent_id,
        schedule_name=trigger.schedule_name,
        window_minutes=trigger.window_minutes,
        summary_window_days=body.summary_window_days,
        dry_run=body.dry_run,
        trigger=trigger,
        notify=notified,
    )


def _schedule_trigger(
    session: Session,
    *,
    org_id: uuid.UUID,
    body: TriggerCreate,
    settings: Settings,
    clock: Clock,
    request_id: str | None,
    idempotency_key: str | None,
    api_key_id: uuid.UUID | None,
    summary: summary_service.SummaryAhead,
) -> tuple[TriggerRead, PolicyRead]:
    """A schedule run's trigger, and the policy it ran under (read once for both steps); committed
    when a promotion ran, ending the window claim before the notify. A deduped or gated trigger
    claimed nothing: its record commits with the notify (one commit, not two, for the common
    retried call).

    On Postgres a deduped trigger is tried first under the policy this process last read, in the
    statement that checks it is still the org's: one statement fewer than reading it. When that
    records nothing, the policy is read and the trigger runs as ever.
    """
    ctx = _context(settings, clock, request_id, idempotency_key, api_key_id, summary)
    known = None
    if session.get_bind().dialect.name == "postgresql":
        known = policy_service.last_read(org_id)
    if known is not None:
        deduped = trigger_service.record_deduped_unread(
            session, org_id=org_id, body=body, policy=known, ctx=ctx
        )
        if deduped is not None:
            return deduped, known
    policy = policy_service.effective_policy(session, org_id=org_id)
    result = trigger_service.run_trigger(session, org_id=org_id, body=body, policy=policy, ctx=ctx)
    if result.outcome in PROMOTED:
        session.commit()
    return result, policy


@dataclass
class AutorunReport:
    due: int = 0
    executed: int = 0
    deduped: int = 0
    failed: int = 0
    errors: int = 0
    deferred: int = 0


def run_due_schedules(
    session_factory: sessionmaker[Session],
    *,
    settings: Settings,
    clock: Clock,
    delay: scheduler_service.Delay,
    budget_seconds: float = DUE_BUDGET_SECONDS,
    tracker: scheduler_service.DueTracker | None = None,
) -> AutorunReport:
    """Run every due window once; what the budget leaves over is still due at the next call.

    With a `tracker` (the worker's), a call when nothing is due reads no org it need not.
    """
    with session_factory() as session:
        due = scheduler_service.due_runs(session, now=clock.now(), delay=delay, tracker=tracker)
    report = AutorunReport(due=len(due))
    started = time.monotonic()
    for n, run in enumerate(due):
        if time.monotonic() - started > budget_seconds:
            report.deferred = len(due) - n
            break
        run_one_due(session_factory, run, settings=settings, clock=clock, report=report)
    return report


def run_one_due(
    session_factory: sessionmaker[Session],
    run: scheduler_service.DueRun,
    *,
    settings: Settings,
    clock: Clock,
    report: AutorunReport,
) -> None:
    """One org's schedule run; its failure is logged and counted, never stops the others."""
    request_id = f"autorun-{uuid.uuid4().hex[:16]}"
    body = ScheduleRunCreate(
        org_id=run.org_id, schedule_name=run.schedule_name, window_minutes=run.window.minutes
    )
    try:
        with session_factory() as session:
            result = schedule_run(
                session,
                session_factory=session_factory,
                org_id=run.org_id,
                body=body,
                settings=settings,
                clock=clock,
                request_id=request_id,
                idempotency_key=run.idempotency_key,
                api_key_id=None,
            )
            session.commit()
    except Exception:
        report.errors += 1
        log.exception(
            json.dumps(
                {
                    "event": "scheduled_run_error",
                    "org_id": str(run.org_id),
                    "request_id": request_id,
                }
            )
        )
        return
    outcome = result.trigger.outcome
    report.executed += outcome == "executed"
    report.deduped += outcome == "deduped"
    report.failed += outcome == "failed"
    log.info(json.dumps(_log_fields(run, request_id, outcome, result.notify.outcome)))


def _log_fields(
    run: scheduler_service.DueRun, request_id: str, outcome: str, notify_outcome: str
) -> dict[str, Any]:
    return {
        "event": "scheduled_run",
        "org_id": str(run.org_id),
        "schedule_name": run.schedule_name,
        "request_id": request_id,
        "window_start": windows.iso_z(run.window.start),
        "outcome": outcome,
        "notify_outcome": notify_outcome,
    }
