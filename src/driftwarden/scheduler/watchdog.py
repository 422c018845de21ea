"""The schedule watchdog (docs/reference/scheduler.md, watchdog): a dead man's switch that
`driftwarden worker` runs every minute.

One query reads every enabled policy's schedule, and every disabled one still being triggered, with
its last executed trigger and its watch state (`contract_drift_schedule_watch_state`); the status
rules are pure (`status.py`). A status change is claimed with a conditional UPDATE from the old
status to the new one, so when several workers watch at once exactly one of them wins each
transition and sends its alert. The claim and the outbox rows commit together; delivery, escalation
(step 6 of the anomaly notify, through `notify.escalate`) and the notify event follow, as in the
anomaly notify:
docs/reference/scheduler.md#anomaly-notify
The missed alert's cooldown and fingerprint live in the watch-state row, apart from the anomaly's
cooldown.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, sessionmaker

from driftwarden.clock import Clock
from driftwarden.db.helpers import chunked
from driftwarden.notifications import outbox
from driftwarden.scheduler import anomaly, notify
from driftwarden.scheduler import status as status_rules
from driftwarden.scheduler.models import DriftPolicy, ScheduleWatchState, TriggerRun
from driftwarden.scheduler.schemas import Delivery, EscalationRead, PolicyRead, Thresholds
from driftwarden.scheduler.summary import newest_trigger_value, policy_off, trigger_summary
from driftwarden.settings import Settings

log = logging.getLogger("driftwarden.scheduler.watchdog")
MISSED_EVENT, RECOVERED_EVENT = (
    "contract_drift.schedule_missed",
    "contract_drift.schedule_recovered",
)
DISABLED_EVENT = "contract_drift.schedule_disabled_triggered"
MISSED_REASON, RECOVERED_REASON = "schedule_missed", "schedule_recovered"
DISABLED_REASON = "schedule_disabled_triggered"
EVENTS = {
    "missed": (MISSED_EVENT, MISSED_REASON),
    "recovered": (RECOVERED_EVENT, RECOVERED_REASON),
    "disabled": (DISABLED_EVENT, DISABLED_REASON),
}
# The longest window plus its grace: older refused triggers cannot make any schedule `disabled`.
GATED_LOOKBACK = timedelta(minutes=10080 + status_rules.default_grace_minutes(10080))
SUMMARY_WINDOW_DAYS = 30
NEXT_STEPS = (
    "GET /api/v1/system/contracts/drift/schedule-status shows every schedule's status; "
    "see 'Schedule watchdog' in docs/runbook.md."
)
W = ScheduleWatchState


@dataclass(frozen=True)
class Watched:
    """One enabled policy's schedule: what it is now, and what the watchdog last recorded."""

    policy: PolicyRead
    status: status_rules.ScheduleStatus
    last_status: str | None
    missed_alert: str | None
    alert_fingerprint: str | None
    missed_notified_at: datetime | None
    down_since: datetime | None

    @property
    def action(self) -> str | None:
        moved = (
            self.down_since is not None and status_rules.down_since(self.status) != self.down_since
        )
        return status_rules.watch_action(
            self.last_status,
            self.status.status,
            new_outage=moved,
            policy_off=policy_off(self.policy),
        )


@dataclass(frozen=True)
class Alert:
    org_id: uuid.UUID
    schedule_name: str
    event_type: str
    outcome: str  # sent | failed | suppressed | skipped
    escalation: EscalationRead | None = None


@dataclass
class WatchReport:
    checked: int = 0
    quiet: int = 0
    errors: int = 0
    alerts: list[Alert] = field(default_factory=list)


def watched_schedules(session: Session, *, now: datetime) -> list[Watched]:
    """Every enabled policy's schedule, and every disabled one still being triggered: one query."""
    last = aliased(TriggerRun)
    of_policy = {"org_id": DriftPolicy.org_id, "schedule_name": DriftPolicy.schedule_name}
    newest = newest_trigger_value(TriggerRun.id, executed_only=True, **of_policy)
    gated = newest_trigger_value(
        TriggerRun.started_at,
        executed_only=False,
        outcomes=status_rules.GATED_OUTCOMES,
        **of_policy,
    )
    query = (
        select(
            DriftPolicy,
            last.window_start,
            last.started_at,
            gated,
            W.last_status,
            W.missed_alert,
            W.alert_fingerprint,
            W.missed_notified_at,
            W.down_since,
        )
        .select_from(DriftPolicy)
        .outerjoin(last, last.id == newest)
        .outerjoin(
            W, and_(W.org_id == DriftPolicy.org_id, W.schedule_name == DriftPolicy.schedule_name)
        )
        .where(or_(DriftPolicy.enabled.is_(True), gated >= now - GATED_LOOKBACK))
        .order_by(DriftPolicy.org_id)
    )
    found = []
    for policy_row, last_ws, last_at, gated_at, *state in session.execute(query):
        policy = PolicyRead.of(policy_row, is_default=False)
        computed = status_rules.schedule_status(
            window_minutes=policy.schedule_window_minutes,
            last_window_start=last_ws,
            now=now,
            last_executed_at=last_at,
            policy_off=policy_off(policy),
            last_gated_at=gated_at,
        )
        if policy.enabled or computed.status == "disabled":
            found.append(Watched(policy, computed, *state))
    return found


def tick(
    session_factory: sessionmaker[Session], *, settings: Settings, clock: Clock
) -> WatchReport:
    """Check every enabled org's schedule once; alert on each transition this worker wins."""
    now = clock.now()
    with session_factory() as session:
        _forget_unwatched(session)
        watched = watched_schedules(session, now=now)
        _insert_missing(session, [w for w in watched if w.last_status is None], now=now)
        quiet = [w for w in watched if w.action == "quiet"]
        _record_quiet(session, quiet, now=now)
        session.commit()
    report = WatchReport(checked=len(watched), quiet=len(quiet))
    for item in watched:
        if item.action not in EVENTS:
            continue
        try:
            alert = _alert(session_factory, item, settings=settings, clock=clock)
        except (
            Exception
        ):  # logged; the others go on, and a change left unclaimed is retried next tick
            report.errors += 1
            log.exception(
                json.dumps({"event": "schedule_alert_error", "org_id": str(item.policy.org_id)})
            )
            continue
        if alert is not None:
            report.alerts.append(alert)
    return report


def _forget_unwatched(session: Session) -> None:
    """Drop the state of schedules no longer watched, so a re-enabled schedule starts afresh.

    A `disabled` episode's row stays while its policy is off: it is what makes the alert go once.
    """
    watched = exists().where(
        DriftPolicy.org_id == W.org_id,
        DriftPolicy.schedule_name == W.schedule_name,
        or_(DriftPolicy.enabled.is_(True), W.last_status == "disabled"),
    )
    session.execute(delete(W).where(~watched))


def _insert_missing(session: Session, missing: list[Watched], *, now: datetime) -> None:
    """One row per newly watched schedule, as `new`; a concurrent worker's insert wins quietly."""
    if not missing:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    rows = [
        {
            "org_id": w.policy.org_id,
            "schedule_name": w.policy.schedule_name,
            "last_status": "new",
            "updated_at": now,
        }
        for w in missing
    ]
    for chunk in chunked(rows):
        session.execute(dialect.insert(W).values(chunk).on_conflict_do_nothing())


def _record_quiet(session: Session, quiet: list[Watched], *, now: datetime) -> None:
    """Status changes that alert nobody.

    One UPDATE per (old, new) pair, each from the old status only.
    """
    groups: dict[tuple[str, str], list[tuple[uuid.UUID, str]]] = {}
    for w in quiet:
        groups.setdefault((w.last_status or "new", w.status.status), []).append(
            (w.policy.org_id, w.policy.schedule_name)
        )
    for (old, new), keys in groups.items():
        for chunk in chunked(keys):
            session.execute(
                update(W)
                .where(tuple_(W.org_id, W.schedule_name).in_(chunk), W.last_status == old)
                .values(last_status=new, updated_at=now)
            )


def _alert(
    session_factory: sessionmaker[Session], item: Watched, *, settings: Settings, clock: Clock
) -> Alert | None:
    """Claim the transition; the winner plans, delivers and records its alert.

    None when another worker won.
    """
    request_id = f"watchdog-{uuid.uuid4().hex[:16]}"
    with session_factory() as session:
        plan = _claim_and_plan(
            session, item, now=clock.now(), settings=settings, request_id=request_id
        )
        if plan is None:
            session.rollback()
            return None
        session.commit()
    deliveries = notify.deliver(
        plan, session_factory=session_factory, settings=settings, clock=clock
    )
    with session_factory() as session:
        alert = _finish(session, item, plan, deliveries, now=clock.now(), request_id=request_id)
        session.commit()
    log.info(
        json.dumps(
            {
                "event": "schedule_alert",
                "org_id": str(alert.org_id),
                "request_id": request_id,
                "schedule_name": alert.schedule_name,
                "event_type": alert.event_type,
                "outcome": alert.outcome,
                "status": item.status.status,
            }
        )
    )
    return alert


def _claim_and_plan(
    session: Session, item: Watched, *, now: datetime, settings: Settings, request_id: str
) -> notify.NotifyPlan | None:
    """Win the transition, decide as the anomaly notify does (alerts on, cooldown), and queue the
    alert with the claim. A `disabled` alert has no cooldown: its claim makes it once an episode."""
    missed = item.action == "missed"
    org_id, name = item.policy.org_id, item.policy.schedule_name
    event_type, reason = EVENTS[item.action]
    fingerprint = anomaly.fingerprint(org_id, name, [reason])
    ends = (
        anomaly.cooldown_until(
            state_fingerprint=item.alert_fingerprint,
            last_notified_at=item.missed_notified_at,
            current_fingerprint=fingerprint,
            cooldown_minutes=item.policy.alert_cooldown_minutes,
        )
        if missed
        else None
    )
    # A recovery is told only to whoever was (or is being) told about the outage.
    wanted = item.action != "recovered" or item.missed_alert in ("queued", "sent", "failed")
    decision = anomaly.decide_notify(
        dry_run=False,
        anomaly_detected=wanted,
        alert_enabled=item.policy.alert_enabled,
        force_notify=False,
        cooldown_ends=ends,
        now=now,
    )
    if not _claim(session, item, decision=decision, fingerprint=fingerprint, now=now):
        return None
    plan = notify.NotifyPlan(
        org_id=org_id,
        schedule_name=name,
        agent_id=None,
        reasons=[reason],
        fingerprint=fingerprint,
        decision=decision,
        cooldown_ends=ends,
        summary=trigger_summary(
            session,
            org_id=org_id,
            schedule_name=name,
            window_days=SUMMARY_WINDOW_DAYS,
            now=now,
            limit=None,
        ),
        thresholds=Thresholds(**item.policy.model_dump(include=set(Thresholds.model_fields))),
    )
    if decision.action == "send":
        rows = outbox.enqueue(
            session,
            org_id=org_id,
            event_type=event_type,
            data=_event_data(item, plan),
            now=now,
            settings=settings,
            request_id=request_id,
        )
        plan.outbox_ids = [row.id for row in rows]
    return plan


def _claim(
    session: Session,
    item: Watched,
    *,
    decision: anomaly.NotifyDecision,
    fingerprint: str,
    now: datetime,
) -> bool:
    """The conditional UPDATE from the state this worker read: only one worker's UPDATE matches.

    A missed alert about to be sent takes its cooldown in the same UPDATE (released if delivery
    fails), so no other worker can send it again before this one has finished.
    """
    if item.action == "missed":
        values: dict[str, Any] = {
            "last_status": "down",
            "down_since": status_rules.down_since(item.status),
            "missed_alert": "queued" if decision.action == "send" else decision.action,
        }
        if decision.action == "send":
            values.update(missed_notified_at=now, alert_fingerprint=fingerprint)
    elif item.action == "disabled":  # a new episode: the outage state and its cooldown start afresh
        values = {
            "last_status": "disabled",
            "down_since": None,
            "missed_alert": None,
            "missed_notified_at": None,
            "alert_fingerprint": None,
        }
    else:
        values = {"last_status": item.status.status, "down_since": None}
    where = [
        W.org_id == item.policy.org_id,
        W.schedule_name == item.policy.schedule_name,
        W.last_status == (item.last_status or "new"),
        W.missed_notified_at.is_not_distinct_from(item.missed_notified_at),
    ]
    if (
        item.last_status == "down"
    ):  # down again after an unseen recovery: the old outage is the token
        where.append(W.down_since == item.down_since)
    claimed = session.execute(update(W).where(*where).values(updated_at=now, **values))
    return claimed.rowcount == 1


def _event_type(item: Watched) -> str:
    return EVENTS[str(item.action)][0]


def _event_data(item: Watched, plan: notify.NotifyPlan) -> dict[str, Any]:
    computed = item.status
    return {
        "org_id": str(plan.org_id),
        "schedule_name": plan.schedule_name,
        "status": computed.status,
        "window_minutes": computed.window_minutes,
        "grace_minutes": computed.grace_minutes,
        "last_executed_at": computed.last_executed_at,
        "expected_by": computed.expected_by,
        "missed_windows": computed.missed_windows,
        "down_since": {
            "missed": status_rules.down_since(computed),
            "recovered": item.down_since,
        }.get(str(item.action)),
        "last_disabled_trigger_at": computed.last_gated_at,
        "policy_enabled": item.policy.enabled,
        "promote_to_patterns": item.policy.promote_to_patterns,
        "reasons": plan.reasons,
        "fingerprint": plan.fingerprint,
        "summary": plan.summary.model_dump(mode="json", exclude={"items", "schedule_status"}),
        "next_steps": NEXT_STEPS,
    }


def _finish(
    session: Session,
    item: Watched,
    plan: notify.NotifyPlan,
    deliveries: list[Delivery],
    *,
    now: datetime,
    request_id: str,
) -> Alert:
    """Cooldown state on `sent`, escalation on a failed missed or disabled alert, the event."""
    event_type, action = _event_type(item), plan.decision.action
    notification = (
        notify.notification_of(deliveries, event_type=event_type) if action == "send" else None
    )
    outcome = action if notification is None else ("sent" if notification.sent else "failed")
    escalation = None
    values: dict[str, Any] = {}
    if item.action == "missed":
        values["missed_alert"] = outcome
        if outcome == "sent":
            values.update(missed_notified_at=now, alert_fingerprint=plan.fingerprint)
        elif outcome == "failed":
            values.update(
                missed_notified_at=item.missed_notified_at, alert_fingerprint=item.alert_fingerprint
            )
    elif item.action == "recovered" and outcome == "sent":
        values["recovered_notified_at"] = now
    if item.action != "recovered" and outcome == "failed" and notification is not None:
        escalation = notify.escalate(
            session, plan=plan, notification=notification, now=now, request_id=request_id
        )
    if values:
        session.execute(
            update(W)
            .where(W.org_id == plan.org_id, W.schedule_name == plan.schedule_name)
            .values(**values)
        )
    notify.record_event(
        session,
        plan=plan,
        outcome=outcome,
        event_type=event_type,
        anomaly_detected=item.action != "recovered",
        notification=notification,
        escalation=escalation,
        request_id=request_id,
        now=now,
    )
    return Alert(plan.org_id, plan.schedule_name, event_type, outcome, escalation)
