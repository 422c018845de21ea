"""HTTP for the scheduler domain.

Policy, trigger, summary, anomaly notify, schedule run, status:
docs/reference/scheduler.md,
docs/reference/scheduler.md#noticing-a-schedule-that-stopped
"""

from __future__ import annotations

import functools
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from driftwarden.agents import service as agents_service
from driftwarden.api import unit_of_work
from driftwarden.api.deps import (
    AdminDep,
    Caller,
    ClockDep,
    MemberDep,
    SessionDep,
    SettingsDep,
    resolve_org_id,
)
from driftwarden.api.envelope import ERROR_RESPONSES, Envelope, ok
from driftwarden.api.idempotency import IdempotencyKeyRequired
from driftwarden.clock import Clock
from driftwarden.patterns import service as patterns_service
from driftwarden.patterns.schemas import PromoteRequest, PromoteResult
from driftwarden.scheduler import flows, status_reads
from driftwarden.scheduler import policy as policy_service
from driftwarden.scheduler import summary as summary_service
from driftwarden.scheduler.schemas import (
    AlertDeliveryRead,
    NotifyCreate,
    NotifyRead,
    PolicyRead,
    PolicyUpdate,
    ScheduleRunCreate,
    ScheduleRunRead,
    ScheduleStatusList,
    SummaryRead,
    TriggerCreate,
    TriggerRead,
)
from driftwarden.scheduler.windows import SCHEDULE_NAME_PATTERN
from driftwarden.settings import Settings

router = APIRouter(prefix="/system/contracts", tags=["scheduler"], responses=ERROR_RESPONSES)
# Drift promotion belongs to the patterns domain, but its defaults are the org's drift policy: its
# route lives here so that patterns never import the scheduler (mounted right after patterns').
promotion_router = APIRouter(tags=["patterns"], responses=ERROR_RESPONSES)
ScheduleQuery = Annotated[
    str | None,
    Query(
        pattern=SCHEDULE_NAME_PATTERN, description="Omit for all schedules (reported as `_all`)."
    ),
]
WindowDays = Annotated[int, Query(ge=1, le=365)]


def _org(
    session: Session,
    request: Request,
    caller: Caller,
    org_id: uuid.UUID | None,
    agent_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """The org acted on; a named agent must belong to it."""
    resolved = resolve_org_id(session, request, caller, org_id)
    if agent_id is not None:
        agents_service.get_agent_or_404(session, org_id=resolved, agent_id=agent_id)
    return resolved


@router.get("/drift-policy", name="get_drift_policy", response_model=Envelope[PolicyRead])
def get_drift_policy(
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    org_id: Annotated[uuid.UUID | None, Query()] = None,
) -> dict:
    org = _org(session, request, caller, org_id)
    return ok(policy_service.effective_policy(session, org_id=org))


@router.post("/drift-policy", name="update_drift_policy", response_model=Envelope[PolicyRead])
def update_drift_policy(
    body: PolicyUpdate, request: Request, session: SessionDep, caller: AdminDep, clock: ClockDep
) -> dict:
    org = _org(session, request, caller, body.org_id)
    result = policy_service.update_policy(session, org_id=org, body=body, now=clock.now())
    return ok(result)


def _trigger(
    session: Session,
    request: Request,
    caller: Caller,
    *,
    org_id: uuid.UUID,
    body: TriggerCreate,
    settings: Settings,
    clock: Clock,
) -> TriggerRead:
    """Run and commit one trigger (the same path as the built-in scheduler's)."""
    return flows.trigger(
        session,
        org_id=org_id,
        body=body,
        settings=settings,
        clock=clock,
        request_id=caller.request_id,
        idempotency_key=request.headers.get("idempotency-key"),
        api_key_id=caller.api_key_id,
    )


@router.post("/drift/trigger", name="trigger_contract_drift", response_model=Envelope[TriggerRead])
def trigger_contract_drift(
    body: TriggerCreate,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
    clock: ClockDep,
    _key: IdempotencyKeyRequired,
) -> dict:
    org = _org(session, request, caller, body.org_id, body.agent_id)
    return ok(
        _trigger(session, request, caller, org_id=org, body=body, settings=settings, clock=clock)
    )


@router.get(
    "/drift/trigger-summary", name="get_trigger_summary", response_model=Envelope[SummaryRead]
)
def get_trigger_summary(
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    clock: ClockDep,
    org_id: Annotated[uuid.UUID | None, Query()] = None,
    schedule_name: ScheduleQuery = None,
    window_days: WindowDays = 30,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict:
    org = _org(session, request, caller, org_id)
    now = clock.now()
    result = summary_service.trigger_summary(
        session,
        org_id=org,
        schedule_name=schedule_name,
        window_days=window_days,
        now=now,
        limit=limit,
    )
    policy = policy_service.effective_policy(session, org_id=org)
    [result.schedule_status] = status_reads.schedule_statuses(
        session,
        org_id=org,
        policy=policy,
        now=now,
        schedule_name=schedule_name or policy.schedule_name,
    )
    return ok(result)


def _notify(
    session: Session,
    request: Request,
    *,
    org_id: uuid.UUID,
    body: NotifyCreate,
    settings: Settings,
    clock: Clock,
) -> NotifyRead:
    """Plan, commit, deliver, record (the built-in scheduler's path too); sets the audit code."""
    result = flows.run_notify(
        session,
        session_factory=request.app.state.session_factory,
        org_id=org_id,
        body=body,
        settings=settings,
        clock=clock,
        request_id=request.state.request_id,
    )
    request.state.audit_code = f"CONTRACT_DRIFT_ANOMALY_NOTIFY_{result.outcome.upper()}"
    return result


@router.post(
    "/drift/trigger-summary/notify",
    name="notify_trigger_anomaly",
    response_model=Envelope[NotifyRead],
)
def notify_trigger_anomaly(
    body: NotifyCreate,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
    clock: ClockDep,
    _key: IdempotencyKeyRequired,
) -> dict:
    org = _org(session, request, caller, body.org_id, body.agent_id)
    return ok(_notify(session, request, org_id=org, body=body, settings=settings, clock=clock))


@router.get(
    "/drift/trigger-alert-delivery",
    name="get_trigger_alert_delivery",
    response_model=Envelope[AlertDeliveryRead],
)
def get_trigger_alert_delivery(
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    clock: ClockDep,
    org_id: Annotated[uuid.UUID | None, Query()] = None,
    schedule_name: ScheduleQuery = None,
    window_days: WindowDays = 30,
) -> dict:
    org = _org(session, request, caller, org_id)
    return ok(
        summary_service.alert_delivery(
            session,
            org_id=org,
            schedule_name=schedule_name,
            window_days=window_days,
            now=clock.now(),
        )
    )


@router.post(
    "/drift/schedule-run",
    name="run_contract_drift_schedule",
    response_model=Envelope[ScheduleRunRead],
)
async def run_contract_drift_schedule(
    body: ScheduleRunCreate,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    settings: SettingsDep,
    clock: ClockDep,
    _key: IdempotencyKeyRequired,
) -> dict:
    """The one call a scheduler makes.

    The trigger, then the anomaly notify, with the same dry_run. `async`, its work in the thread
    pool: FastAPI hands a plain `def` route's answer to the pool a second time to validate it.
    """
    result = await run_in_threadpool(
        _schedule_run, body, request, session, caller, settings=settings, clock=clock
    )
    request.state.audit_code = f"CONTRACT_DRIFT_ANOMALY_NOTIFY_{result.notify.outcome.upper()}"
    return ok(result)


def _schedule_run(
    body: ScheduleRunCreate,
    request: Request,
    session: Session,
    caller: Caller,
    *,
    settings: Settings,
    clock: Clock,
) -> ScheduleRunRead:
    org = _org(session, request, caller, body.org_id, body.agent_id)
    if body.escalation_agent_id is not None:  # validated as agent_id is, with the same error
        _org(session, request, caller, org, body.escalation_agent_id)
    return flows.schedule_run(
        session,
        session_factory=request.app.state.session_factory,
        org_id=org,
        body=body,
        settings=settings,
        clock=clock,
        request_id=caller.request_id,
        idempotency_key=request.headers.get("idempotency-key"),
        api_key_id=caller.api_key_id,
        write_event=functools.partial(unit_of_work.insert_with_completion, request.scope),
    )


@router.get(
    "/drift/schedule-status",
    name="get_schedule_status",
    response_model=Envelope[ScheduleStatusList],
)
def get_schedule_status(
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    clock: ClockDep,
    org_id: Annotated[uuid.UUID | None, Query()] = None,
) -> dict:
    """Every schedule of the org: new, up, late or down.

    The policy's schedule, and each name with triggers.
    docs/reference/scheduler.md#schedule-status
    """
    org = _org(session, request, caller, org_id)
    policy = policy_service.effective_policy(session, org_id=org)
    items = status_reads.schedule_statuses(session, org_id=org, policy=policy, now=clock.now())
    return ok(
        ScheduleStatusList(
            org_id=org,
            policy_enabled=policy.enabled,
            policy_schedule_name=policy.schedule_name,
            items=items,
            count=len(items),
        )
    )


@promotion_router.post(
    "/contracts/drift/promote-patterns",
    name="promote_drift_patterns",
    response_model=Envelope[PromoteResult],
)
def promote_drift_patterns(
    body: PromoteRequest,
    request: Request,
    session: SessionDep,
    caller: MemberDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> dict:
    """Drift findings become open issue patterns; unset values come from the org's drift policy."""
    org = _org(session, request, caller, body.org_id, body.agent_id)
    min_drift, limit = policy_service.promotion_scope(
        policy_service.effective_policy(session, org_id=org),
        min_drift=body.min_drift,
        limit=body.limit,
    )
    data = patterns_service.promote_drift(
        session,
        org_id=org,
        agent_id=body.agent_id,
        min_drift=min_drift,
        limit=limit,
        dry_run=body.dry_run,
        auto_resolve=body.auto_resolve,
        now=clock.now(),
        settings=settings,
        request_id=caller.request_id,
        api_key_id=caller.api_key_id,
    )
    if body.dry_run:
        session.rollback()  # nothing was written; end the transaction (and SQLite's write lock) now
    return ok(data)
