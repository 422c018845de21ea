"""Read models of the scheduler (SPEC §5.3, §5.5): counts and rates, computed in SQL."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session

from driftwarden.db.base import UTCDateTime
from driftwarden.scheduler.anomaly import ALL_SCHEDULES
from driftwarden.scheduler.models import NotifyEvent, TriggerAlertState, TriggerRun
from driftwarden.scheduler.schemas import AlertDeliveryRead, SummaryRead, TriggerItem

TRIGGER_OUTCOMES = ("executed", "deduped", "failed", "policy_disabled", "promotion_disabled")
NOTIFY_OUTCOMES = ("sent", "failed", "suppressed", "skipped", "dry_run")


def _count(condition: ColumnElement[bool]):  # type: ignore[no-untyped-def]
    return func.count(case((condition, 1)))


def _latest(column, condition: ColumnElement[bool]):  # type: ignore[no-untyped-def]
    return func.max(case((condition, column)), type_=UTCDateTime())


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def trigger_summary(session: Session, *, org_id: uuid.UUID, schedule_name: str | None, window_days: int,
                    now: datetime, limit: int | None = 50) -> SummaryRead:
    """§5.3 in one aggregate query (plus one for the recent items when asked)."""
    scope = [TriggerRun.org_id == org_id, TriggerRun.started_at >= now - timedelta(days=window_days)]
    if schedule_name is not None:
        scope.append(TriggerRun.schedule_name == schedule_name)
    real = TriggerRun.dry_run.is_(False)
    columns = [_count(real).label("trigger_count"), _count(TriggerRun.dry_run.is_(True)).label("dry_run_count"),
               _latest(TriggerRun.started_at, real).label("last_triggered_at"),
               _latest(TriggerRun.started_at, and_(real, TriggerRun.outcome == "executed")).label("last_executed_at")]
    columns += [_count(and_(real, TriggerRun.outcome == o)).label(f"{o}_count") for o in TRIGGER_OUTCOMES]
    row = session.execute(select(*columns).where(*scope)).one()._asdict()
    items = None
    if limit:
        rows = session.scalars(select(TriggerRun).where(*scope)
                               .order_by(TriggerRun.started_at.desc(), TriggerRun.id).limit(limit)).all()
        items = [TriggerItem.model_validate(r, from_attributes=True) for r in rows]
    return SummaryRead(
        org_id=org_id, schedule_name=schedule_name or ALL_SCHEDULES, window_days=window_days,
        execution_rate=_rate(row["executed_count"], row["trigger_count"]),
        dedupe_hit_rate=_rate(row["deduped_count"], row["trigger_count"]),
        items=items, **row)


def alert_state(session: Session, *, org_id: uuid.UUID, schedule_name: str | None) -> TriggerAlertState | None:
    return session.get(TriggerAlertState, (org_id, schedule_name or ALL_SCHEDULES))


def alert_delivery(session: Session, *, org_id: uuid.UUID, schedule_name: str | None, window_days: int,
                   now: datetime) -> AlertDeliveryRead:
    """§5.5: notify events by outcome in the window, and the cooldown state."""
    name = schedule_name or ALL_SCHEDULES
    scope = [NotifyEvent.org_id == org_id, NotifyEvent.schedule_name == name,
             NotifyEvent.created_at >= now - timedelta(days=window_days)]
    columns = [func.count().label("total_notify_events"), func.max(NotifyEvent.created_at).label("last_event_at")]
    columns += [_count(NotifyEvent.outcome == o).label(f"{o}_count") for o in NOTIFY_OUTCOMES]
    columns += [_latest(NotifyEvent.created_at, NotifyEvent.outcome == o).label(f"last_{o}_at")
                for o in ("sent", "failed", "suppressed")]
    row = session.execute(select(*columns).where(*scope)).one()._asdict()
    state = alert_state(session, org_id=org_id, schedule_name=name)
    return AlertDeliveryRead(
        org_id=org_id, schedule_name=name, window_days=window_days,
        last_notified_at=state.last_notified_at if state else None,
        alert_fingerprint=state.alert_fingerprint if state else None,
        **row)
