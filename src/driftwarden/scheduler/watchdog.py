"""The schedule watchdog (docs/reference/scheduler.md, watchdog): a dead man's switch that
`driftwarden worker` runs every minute.

One query reads every enabled policy's schedule, and every disabled one still being triggered, with
its last executed trigger and its watch state (`contract_drift_schedule_watch_state`); with a
worker's `WatchTracker`, only those that may have changed since its last tick (`watchlist.py`).
The status rules are pure (`status.py`). A status change is claimed with a conditional UPDATE from
the old status to the new one, so when several workers watch at once exactly one of them wins each
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
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from driftwarden.clock import Clock
from driftwarden.notifications import outbox
from driftwarden.scheduler import anomaly, notify, watchlist
from driftwarden.scheduler import status as status_rules
from driftwarden.scheduler.models import ScheduleWatchState
from driftwarden.scheduler.schemas import Delivery, EscalationRead, Thresholds
from driftwarden.scheduler.summary import trigger_summary
from driftwarden.scheduler.watchlist import Watched, WatchTracker, watched_schedules
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
SUMMARY_WINDOW_DAYS = 30
NEXT_STEPS = (
    "GET /api/v1/system/contracts/drift/schedule-status shows every schedule's status; "
    "see 'Schedule watchdog' in docs/runbook.md."
)
W = ScheduleWatchState


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


def tick(
    session_factory: sessionmaker[Session],
    *,
    settings: Settings,
    clock: Clock,
    tracker: WatchTracker | None = None,
) -> WatchReport:
    """Check the schedules that may have changed (all, without a tracker); alert on each
    transition this worker wins."""
    now = clock.now()
    since = None if tracker is None else tracker.changed_since(now)
    with session_factory() as session:
        org_ids = None if since is None else watchlist.changed_orgs(session, now=now, since=since)
        watchlist.forget_unwatched(session, org_ids=org_ids)
        watched = watched_schedules(session, now=now, org_ids=org_ids)
        watchlist.insert_missing(session, [w for w in watched if w.last_status is None], now=now)
        quiet = watchlist.record(session, watched, now=now)
        session.commit()
    if tracker is not None:
        tracker.ticked(now, full=since is None)
    report = WatchReport(checked=len(watched), quiet=quiet)
    for item in watched:
        if item.action not in EVENTS:
            continue
        try:
            alert = _alert(session_factory, item, settings=settings, clock=clock)
        except Exception:  # logged; the others go on, and an unclaimed change is due next tick
            report.errors += 1
            log.exception(
                json.dumps({"event": "schedule_alert_error", "org_id": str(item.policy.org_id)})
            )
            continue
        if alert is not None:
            report.alerts.append(alert)
    return report


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
    values["next_check_at"] = status_rules.next_change(item.status, now=now)
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
