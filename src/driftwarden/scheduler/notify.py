"""The anomaly notify: decide, enqueue, deliver, then record what happened.

docs/reference/scheduler.md#anomaly-notify

Three phases because the outbox rows must be committed before delivery is attempted
(`notifications.flows.deliver_now` works in its own sessions): `plan_notify` (caller commits),
`deliver`, then `finish_notify` (caller commits); `scheduler.flows.run_notify` runs all three.
The right to send is claimed in `plan_notify`, in the database and in the same transaction as the
outbox rows, so however many runs race only one sends an anomaly per cooldown; a failed delivery
releases the claim (docs/reference/scheduler.md, one alert per anomaly).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, delete, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from driftwarden.db.base import new_id
from driftwarden.db.helpers import dialect_insert
from driftwarden.metrics import events as metrics
from driftwarden.notifications import flows as notification_flows
from driftwarden.notifications import outbox
from driftwarden.patterns import service as patterns_service
from driftwarden.scheduler import anomaly
from driftwarden.scheduler.models import NotifyEvent, TriggerAlertState
from driftwarden.scheduler.schemas import (
    Delivery,
    EscalationRead,
    NotificationRead,
    NotifyRead,
    PolicyRead,
    SummaryRead,
    Thresholds,
)
from driftwarden.scheduler.summary import CooldownState, alert_state, summary_with_cooldown
from driftwarden.settings import Settings

log = logging.getLogger("driftwarden.scheduler")
EVENT_TYPE = "contract_drift.trigger_anomaly"
ESCALATION_TAG = "contract_drift_alert_delivery"
DESTINATION_MISSING = "NOTIFY_DESTINATION_MISSING"
NOTIFY_EVENT_INSERT = NotifyEvent.__table__.insert()
EventWriter = Callable[[Table, dict[str, Any]], None]  # inserts a notify event row


@dataclass
class NotifyPlan:
    """Everything decided before delivery; `outbox_ids` are the messages to deliver now."""

    org_id: uuid.UUID
    schedule_name: str
    agent_id: uuid.UUID | None
    summary: SummaryRead
    reasons: list[str]
    fingerprint: str
    decision: anomaly.NotifyDecision
    cooldown_ends: datetime | None
    thresholds: Thresholds
    outbox_ids: list[uuid.UUID] = field(default_factory=list)
    claim: AlertClaim | None = None


@dataclass(frozen=True)
class AlertClaim:
    """The cooldown row as this run found it, and the values it wrote to claim the send."""

    previous_fingerprint: str | None
    previous_notified_at: datetime | None
    claimed_at: datetime


def plan_notify(
    session: Session,
    *,
    org_id: uuid.UUID,
    schedule_name: str | None,
    agent_id: uuid.UUID | None,
    window_days: int,
    dry_run: bool,
    force_notify: bool,
    policy: PolicyRead,
    now: datetime,
    settings: Settings,
    request_id: str | None,
    summary: tuple[SummaryRead, CooldownState] | None = None,
) -> NotifyPlan:
    """Steps 1-4 up to the outbox write; the caller commits before `deliver`.

    `summary`, when given, was read in this transaction (a deduped trigger's statement).
    """
    name = schedule_name or anomaly.ALL_SCHEDULES
    summary, state = summary or summary_with_cooldown(
        session, org_id=org_id, schedule_name=schedule_name, window_days=window_days, now=now
    )
    reasons = anomaly.anomaly_reasons(
        dedupe_hit_rate=summary.dedupe_hit_rate,
        execution_rate=summary.execution_rate,
        max_dedupe_hit_rate=policy.alert_max_dedupe_hit_rate,
        min_execution_rate=policy.alert_min_execution_rate,
    )
    fp = anomaly.fingerprint(org_id, name, reasons)
    ends = anomaly.cooldown_until(
        state_fingerprint=state.alert_fingerprint,
        last_notified_at=state.last_notified_at,
        current_fingerprint=fp,
        cooldown_minutes=policy.alert_cooldown_minutes,
    )
    decision = anomaly.decide_notify(
        dry_run=dry_run,
        anomaly_detected=bool(reasons),
        alert_enabled=policy.alert_enabled,
        force_notify=force_notify,
        cooldown_ends=ends,
        now=now,
    )
    thresholds = Thresholds(**policy.model_dump(include=set(Thresholds.model_fields)))
    plan = NotifyPlan(
        org_id=org_id,
        schedule_name=name,
        agent_id=agent_id,
        summary=summary,
        reasons=reasons,
        fingerprint=fp,
        decision=decision,
        cooldown_ends=ends,
        thresholds=thresholds,
    )
    if decision.action == "send" and not force_notify:
        claim = AlertClaim(
            previous_fingerprint=state.alert_fingerprint,
            previous_notified_at=state.last_notified_at,
            claimed_at=now,
        )
        if claim_send(
            session,
            org_id=org_id,
            schedule_name=name,
            fingerprint=fp,
            now=now,
            cooldown_minutes=policy.alert_cooldown_minutes,
        ):
            plan.claim = claim
        else:  # another run holds this anomaly's cooldown: it sends, this one reports suppressed
            session.expire_all()
            won = alert_state(session, org_id=org_id, schedule_name=name)
            plan.cooldown_ends = (
                won.last_notified_at + timedelta(minutes=policy.alert_cooldown_minutes)
                if won and won.last_notified_at
                else None
            )
            plan.decision = anomaly.NotifyDecision(
                action="suppressed", would="suppressed", suppressed=True
            )
    if plan.decision.action == "send":
        rows = outbox.enqueue(
            session,
            org_id=org_id,
            event_type=EVENT_TYPE,
            data=_event_data(plan),
            now=now,
            settings=settings,
            request_id=request_id,
        )
        plan.outbox_ids = [row.id for row in rows]
    return plan


def claim_send(
    session: Session,
    *,
    org_id: uuid.UUID,
    schedule_name: str,
    fingerprint: str,
    now: datetime,
    cooldown_minutes: int,
) -> bool:
    """Take the right to send: one upsert of the cooldown row, matching only outside the cooldown.

    Concurrent claimers of the same row queue on its lock; each re-checks the condition against the
    committed winner, so exactly one succeeds per cooldown.
    """
    table = TriggerAlertState.__table__
    insert = dialect_insert(session.get_bind().dialect.name, table).values(
        org_id=org_id,
        schedule_name=schedule_name,
        alert_fingerprint=fingerprint,
        last_notified_at=now,
        updated_at=now,
    )
    outside_cooldown = or_(
        table.c.alert_fingerprint.is_(None),
        table.c.alert_fingerprint != fingerprint,
        table.c.last_notified_at.is_(None),
        table.c.last_notified_at <= now - timedelta(minutes=cooldown_minutes),
    )
    upsert = insert.on_conflict_do_update(
        index_elements=[table.c.org_id, table.c.schedule_name],
        set_={"alert_fingerprint": fingerprint, "last_notified_at": now, "updated_at": now},
        where=outside_cooldown,
    ).returning(table.c.org_id)
    return session.execute(upsert).first() is not None


def release_send(session: Session, *, plan: NotifyPlan, now: datetime) -> None:
    """Give the claim back after a failed delivery, unless someone has claimed the row since."""
    claim = plan.claim
    if claim is None:
        return
    ours = and_(
        TriggerAlertState.org_id == plan.org_id,
        TriggerAlertState.schedule_name == plan.schedule_name,
        TriggerAlertState.alert_fingerprint == plan.fingerprint,
        TriggerAlertState.last_notified_at == claim.claimed_at,
    )
    if claim.previous_fingerprint is None and claim.previous_notified_at is None:
        session.execute(delete(TriggerAlertState).where(ours))  # there was no row: leave none
        return
    session.execute(
        update(TriggerAlertState)
        .where(ours)
        .values(
            alert_fingerprint=claim.previous_fingerprint,
            last_notified_at=claim.previous_notified_at,
            updated_at=now,
        )
    )


def _event_data(plan: NotifyPlan) -> dict[str, Any]:
    return {
        "org_id": str(plan.org_id),
        "schedule_name": plan.schedule_name,
        "reasons": plan.reasons,
        "fingerprint": plan.fingerprint,
        "summary": plan.summary.model_dump(mode="json", exclude={"items"}),
        "thresholds": plan.thresholds.model_dump(mode="json"),
        "next_steps": (
            "Check the scheduler's trigger-summary and the API logs; see docs/runbook.md."
        ),
    }


def deliver(
    plan: NotifyPlan, *, session_factory: Any, settings: Settings, clock: Any
) -> list[Delivery]:
    """Attempt every committed message once, now.

    An error here is a failed delivery, not a crash.
    """
    if plan.decision.action != "send" or not plan.outbox_ids:
        return []
    try:
        results = notification_flows.deliver_now(
            session_factory, outbox_ids=plan.outbox_ids, settings=settings, clock=clock
        )
    except Exception as exc:  # the messages stay in the outbox; the worker retries them
        log.exception(
            "immediate delivery failed", extra={"outbox_ids": [str(i) for i in plan.outbox_ids]}
        )
        return [
            Delivery(
                outbox_id=i,
                message_id=None,
                destination=None,
                sent=False,
                status_code=None,
                error=f"delivery error: {type(exc).__name__}",
                attempt_count=0,
            )
            for i in plan.outbox_ids
        ]
    return [
        Delivery(
            outbox_id=r.outbox_id,
            message_id=r.message_id,
            destination=str(r.destination),
            sent=r.sent,
            status_code=r.status_code,
            error=r.error,
            attempt_count=r.attempt_count,
        )
        for r in results
    ]


def notification_of(
    deliveries: list[Delivery], *, event_type: str = EVENT_TYPE
) -> NotificationRead:
    """The response's `notification`: sent only when every destination accepted the message."""
    if not deliveries:
        return NotificationRead(
            sent=False,
            event_type=event_type,
            outbox_id=None,
            message_id=None,
            attempt_count=0,
            status_code=None,
            error=DESTINATION_MISSING,
            deliveries=[],
        )
    failed = next((d for d in deliveries if not d.sent), None)
    lead = failed or deliveries[0]
    return NotificationRead(
        sent=failed is None,
        event_type=event_type,
        outbox_id=lead.outbox_id,
        message_id=lead.message_id,
        attempt_count=lead.attempt_count,
        status_code=lead.status_code,
        error=lead.error,
        deliveries=deliveries,
    )


def finish_notify(
    session: Session,
    *,
    plan: NotifyPlan,
    deliveries: list[Delivery],
    now: datetime,
    request_id: str | None,
    write_event: EventWriter | None = None,
) -> NotifyRead:
    """Steps 5-7: cooldown state, escalation, the notify event; the caller commits."""
    action = plan.decision.action
    notification = notification_of(deliveries) if action == "send" else None
    outcome = action if notification is None else ("sent" if notification.sent else "failed")
    cooldown_ends = plan.cooldown_ends
    escalation = None
    if outcome == "sent":
        _record_sent(session, plan=plan, now=now)
        cooldown_ends = now + timedelta(minutes=plan.thresholds.alert_cooldown_minutes)
    elif outcome == "failed":
        release_send(session, plan=plan, now=now)
        escalation = escalate(
            session, plan=plan, notification=notification, now=now, request_id=request_id
        )
    record_event(
        session,
        plan=plan,
        outcome=outcome,
        event_type=EVENT_TYPE,
        anomaly_detected=bool(plan.reasons),
        notification=notification,
        escalation=escalation,
        request_id=request_id,
        now=now,
        write=write_event,
    )
    active = cooldown_ends if cooldown_ends is not None and cooldown_ends > now else None
    return NotifyRead(
        anomaly_detected=bool(plan.reasons),
        reasons=plan.reasons,
        fingerprint=plan.fingerprint,
        outcome=outcome,
        would_outcome=plan.decision.would,
        notified=outcome == "sent",
        suppressed=plan.decision.suppressed,
        cooldown_until=active,
        notification=notification,
        escalation_pattern=escalation,
        summary=plan.summary,
        thresholds=plan.thresholds,
    )


def _record_sent(session: Session, *, plan: NotifyPlan, now: datetime) -> None:
    """Upsert the cooldown row; a concurrent first insert turns into an update."""
    values = {"alert_fingerprint": plan.fingerprint, "last_notified_at": now, "updated_at": now}
    for _ in range(2):
        state = alert_state(session, org_id=plan.org_id, schedule_name=plan.schedule_name)
        if state is not None:
            for name, value in values.items():
                setattr(state, name, value)
            session.flush()
            return
        try:
            with session.begin_nested():
                session.add(
                    TriggerAlertState(
                        org_id=plan.org_id, schedule_name=plan.schedule_name, **values
                    )
                )
        except IntegrityError:
            continue
        return


def record_event(
    session: Session,
    *,
    plan: NotifyPlan,
    outcome: str,
    event_type: str,
    anomaly_detected: bool,
    notification: NotificationRead | None,
    escalation: EscalationRead | None,
    request_id: str | None,
    now: datetime,
    write: EventWriter | None = None,
) -> None:
    """The notify event row of one alert decision (anomaly or watchdog), and its counter.

    A Core insert: nothing reads the row back, and the ORM's flush of one new object cost more
    than the statement on every schedule run. `write`, when given, inserts it instead (the
    schedule-run route: with the request's idempotency record, in its transaction).
    """
    row = {
        "id": new_id(),
        "org_id": plan.org_id,
        "schedule_name": plan.schedule_name,
        "outcome": outcome,
        "event_type": event_type,
        "anomaly_detected": anomaly_detected,
        "reasons": plan.reasons,
        "fingerprint": plan.fingerprint,
        "outbox_id": notification.outbox_id if notification else None,
        "escalation_pattern_id": escalation.id if escalation else None,
        "error": notification.error if notification and outcome == "failed" else None,
        "request_id": request_id,
        "created_at": now,
    }
    if write is None:
        session.execute(NOTIFY_EVENT_INSERT, row)
    else:
        write(NotifyEvent.__table__, row)
    metrics.record_notify(outcome=outcome)


def escalate(
    session: Session,
    *,
    plan: NotifyPlan,
    notification: NotificationRead,
    now: datetime,
    request_id: str | None,
) -> EscalationRead:
    """Create or reuse the one open alert-delivery pattern of this org and schedule."""
    evidence = {
        "error": notification.error,
        "status_code": notification.status_code,
        "outbox_id": str(notification.outbox_id) if notification.outbox_id else None,
        "event_type": notification.event_type,
        "schedule_name": plan.schedule_name,
        "reasons": plan.reasons,
        "fingerprint": plan.fingerprint,
        "request_id": request_id,
        "failed_at": now.isoformat(),
    }
    pattern, created = patterns_service.upsert_open_pattern(
        session,
        org_id=plan.org_id,
        agent_id=plan.agent_id,
        dedupe_key=f"{ESCALATION_TAG}:{plan.org_id}:{plan.schedule_name}",
        primary_tag=ESCALATION_TAG,
        title=f"Contract drift alert could not be delivered (schedule '{plan.schedule_name}')",
        priority="high",
        evidence=evidence,
        now=now,
        related_tags=("contract_drift", "notifications"),
    )
    return EscalationRead.of(pattern, created=created, reused=not created)
