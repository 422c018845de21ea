"""Read model of schedule status: a schedule's newest triggers and its watch row, in one query,
and the status rules applied to them.

docs/reference/scheduler.md#schedule-status
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import String, and_, literal, select, union
from sqlalchemy.orm import Session, aliased

from driftwarden.scheduler import status as status_rules
from driftwarden.scheduler.models import ScheduleWatchState, TriggerRun
from driftwarden.scheduler.schemas import PolicyRead, ScheduleStatusRead
from driftwarden.scheduler.windows import gate_outcome


def newest_trigger_value(
    column,
    *,
    org_id,
    schedule_name,
    executed_only: bool,  # type: ignore[no-untyped-def]
    org_wide_only: bool = False,
    outcomes: tuple[str, ...] = (),
):
    """`column` of the schedule's newest real trigger (executed only, of `outcomes`, or any), as a
    correlated subquery.

    Walks the (org_id, schedule_name, started_at) index backwards, so it stops at the newest match.
    """
    where = [
        TriggerRun.org_id == org_id,
        TriggerRun.schedule_name == schedule_name,
        TriggerRun.dry_run.is_(False),
    ]
    if executed_only:
        where.append(TriggerRun.outcome == "executed")
    if outcomes:
        where.append(TriggerRun.outcome.in_(outcomes))
    if org_wide_only:
        where.append(TriggerRun.agent_id.is_(None))
    return (
        select(column)
        .where(*where)
        .order_by(TriggerRun.started_at.desc())
        .limit(1)
        .scalar_subquery()
    )


def schedule_statuses(
    session: Session,
    *,
    org_id: uuid.UUID,
    policy: PolicyRead,
    now: datetime,
    schedule_name: str | None = None,
) -> list[ScheduleStatusRead]:
    """Schedule status for one schedule, or for the policy's plus every schedule name with triggers.

    docs/reference/scheduler.md#schedule-status

    One query.
    """
    names = select(literal(schedule_name or policy.schedule_name, String(64)).label("name"))
    if schedule_name is None:
        names = union(
            select(TriggerRun.schedule_name.label("name")).where(TriggerRun.org_id == org_id), names
        )
    names = names.subquery()
    name = names.c.name
    executed, latest, watch = aliased(TriggerRun), aliased(TriggerRun), ScheduleWatchState
    gated = newest_trigger_value(
        TriggerRun.started_at,
        org_id=org_id,
        schedule_name=name,
        executed_only=False,
        outcomes=status_rules.GATED_OUTCOMES,
    )
    query = (
        select(
            name,
            executed.window_start.label("ws"),
            executed.started_at.label("at"),
            latest.window_minutes.label("minutes"),
            gated.label("gated_at"),
            watch.last_status,
            watch.down_since,
            watch.missed_notified_at,
            watch.recovered_notified_at,
        )
        .select_from(names)
        .outerjoin(
            executed,
            executed.id
            == newest_trigger_value(
                TriggerRun.id, org_id=org_id, schedule_name=name, executed_only=True
            ),
        )
        .outerjoin(
            latest,
            latest.id
            == newest_trigger_value(
                TriggerRun.id, org_id=org_id, schedule_name=name, executed_only=False
            ),
        )
        .outerjoin(watch, and_(watch.org_id == org_id, watch.schedule_name == name))
        .order_by(name)
    )
    items = []
    off = policy_off(policy)
    for row in session.execute(query):
        is_policy = row.name == policy.schedule_name
        minutes = (
            policy.schedule_window_minutes if is_policy or row.minutes is None else row.minutes
        )
        computed = status_rules.schedule_status(
            window_minutes=minutes,
            last_window_start=row.ws,
            now=now,
            last_executed_at=row.at,
            policy_off=off,
            last_gated_at=row.gated_at,
        )
        items.append(
            status_read(
                row.name,
                computed,
                is_policy=is_policy,
                watched=is_policy and policy.enabled,
                watch=row._asdict(),
            )
        )
    return items


def policy_off(policy: PolicyRead) -> bool:
    """Whether the policy refuses an unforced trigger (`policy_disabled`, `promotion_disabled`)."""
    return (
        gate_outcome(
            policy_enabled=policy.enabled,
            promote_to_patterns=policy.promote_to_patterns,
            force=False,
        )
        is not None
    )


def status_read(
    name: str,
    computed: status_rules.ScheduleStatus,
    *,
    is_policy: bool,
    watched: bool,
    watch: dict[str, Any],
) -> ScheduleStatusRead:
    return ScheduleStatusRead(
        schedule_name=name,
        status=computed.status,
        window_minutes=computed.window_minutes,
        grace_minutes=computed.grace_minutes,
        last_executed_at=computed.last_executed_at,
        last_window_start=computed.last_window_start,
        expected_by=computed.expected_by,
        missed_windows=computed.missed_windows,
        is_policy_schedule=is_policy,
        watched=watched,
        watchdog_status=watch.get("last_status"),
        down_since=watch.get("down_since"),
        missed_notified_at=watch.get("missed_notified_at"),
        recovered_notified_at=watch.get("recovered_notified_at"),
    )
