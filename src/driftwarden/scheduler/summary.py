"""Read models of the scheduler: counts and rates, computed in SQL.

docs/reference/scheduler.md#trigger-summary
docs/reference/scheduler.md#alert-delivery
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Subquery,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from driftwarden.db.base import UTCDateTime
from driftwarden.scheduler import anomaly
from driftwarden.scheduler.anomaly import ALL_SCHEDULES
from driftwarden.scheduler.models import (
    NotifyEvent,
    TriggerAlertState,
    TriggerDayCount,
    TriggerRun,
)
from driftwarden.scheduler.schemas import (
    AlertDeliveryRead,
    SummaryRead,
    TriggerItem,
)
from driftwarden.scheduler.windows import TRIGGER_OUTCOMES


def _count(condition: ColumnElement[bool]):  # type: ignore[no-untyped-def]
    return func.count(case((condition, 1)))


def _latest(column, condition: ColumnElement[bool]):  # type: ignore[no-untyped-def]
    return func.max(case((condition, column)), type_=UTCDateTime())


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def trigger_summary(
    session: Session,
    *,
    org_id: uuid.UUID,
    schedule_name: str | None,
    window_days: int,
    now: datetime,
    limit: int | None = 50,
) -> SummaryRead:
    """The trigger summary in one aggregate query (plus one for the recent items when asked).

    docs/reference/scheduler.md#trigger-summary
    """
    params = summary_params(
        org_id=org_id, schedule_name=schedule_name, window_days=window_days, now=now
    )
    statement = summary_statement(by_schedule=schedule_name is not None)
    row = session.execute(statement, params).one()._asdict()
    items = None
    if limit:
        scope = [TriggerRun.org_id == org_id, TriggerRun.started_at >= params["since"]]
        if schedule_name is not None:
            scope.append(TriggerRun.schedule_name == schedule_name)
        rows = session.scalars(
            select(TriggerRun)
            .where(*scope)
            .order_by(TriggerRun.started_at.desc(), TriggerRun.id)
            .limit(limit)
        ).all()
        items = [TriggerItem.of(r) for r in rows]
    return _summary_read(
        row, org_id=org_id, schedule_name=schedule_name, window_days=window_days, items=items
    )


@dataclass(frozen=True)
class CooldownState:
    """The cooldown row's values as the notify plans with them (None: no row)."""

    alert_fingerprint: str | None
    last_notified_at: datetime | None


def summary_with_cooldown(
    session: Session,
    *,
    org_id: uuid.UUID,
    schedule_name: str | None,
    window_days: int,
    now: datetime,
) -> tuple[SummaryRead, CooldownState]:
    """The notify's summary (no items) and its schedule's cooldown row, in one statement."""
    params = summary_params(
        org_id=org_id, schedule_name=schedule_name, window_days=window_days, now=now
    )
    statement = summary_with_cooldown_statement(by_schedule=schedule_name is not None)
    row = session.execute(statement, params).one()._asdict()
    return summary_of(row, org_id=org_id, schedule_name=schedule_name, window_days=window_days)


@dataclass
class SummaryAhead:
    """The summary and cooldown row a schedule run's notify reads, asked of its trigger first.

    A deduped trigger on Postgres reads them in its own INSERT's statement (one snapshot with the
    winner it names, one statement fewer); otherwise `found` stays None and the notify reads them.
    """

    window_days: int
    found: tuple[SummaryRead, CooldownState] | None = None


def summary_params(
    *, org_id: uuid.UUID, schedule_name: str | None, window_days: int, now: datetime
) -> dict[str, Any]:
    """The binds of `summary_statement` (and `summary_with_cooldown_statement`).

    The window, from `since` on, in two parts: its triggers up to the next UTC midnight
    (`first_end`), counted row by row, and the days from that midnight's (`first_day`) on, from
    their day counts (today's included: a transaction's own triggers are counted as written).
    """
    since = now - timedelta(days=window_days)
    first_end = datetime.combine(since.astimezone(UTC).date(), time(), UTC) + timedelta(days=1)
    return {
        "org_id": org_id,
        "since": since,
        "first_end": first_end,
        "first_day": first_end.date(),
        "schedule_name": schedule_name,
        "cooldown_name": schedule_name or ALL_SCHEDULES,
    }


def summary_of(
    row: dict[str, Any], *, org_id: uuid.UUID, schedule_name: str | None, window_days: int
) -> tuple[SummaryRead, CooldownState]:
    """The summary and cooldown state from a row of `summary_with_cooldown_statement`."""
    found = CooldownState(
        alert_fingerprint=row.pop("cooldown_fp"),
        last_notified_at=row.pop("cooldown_at"),
    )
    read = _summary_read(
        row, org_id=org_id, schedule_name=schedule_name, window_days=window_days, items=None
    )
    return read, found


def with_own_deduped(row: dict[str, Any], *, started_at: datetime) -> dict[str, Any]:
    """The summary's counts with a deduped trigger that its statement's snapshot could not see
    (the statement inserted it)."""
    row = _zeroed(row)
    last = row["last_triggered_at"]
    return {
        **row,
        "trigger_count": row["trigger_count"] + 1,
        "deduped_count": row["deduped_count"] + 1,
        "last_triggered_at": started_at if last is None else max(last, started_at),
    }


@functools.cache
def summary_with_cooldown_statement(*, by_schedule: bool) -> Select[Any]:
    """The summary's aggregates and its cooldown row, built once and bound on each call: every
    schedule run's notify issues it, and building the expression (and its ORM compile state) cost
    more than running it."""
    state = TriggerAlertState.__table__.alias("c").c  # Core: no ORM compile
    key = (
        state.org_id == bindparam("org_id", type_=state.org_id.type),
        state.schedule_name == bindparam("cooldown_name", type_=state.schedule_name.type),
    )
    return summary_statement(by_schedule=by_schedule).add_columns(
        select(state.alert_fingerprint).where(*key).scalar_subquery().label("cooldown_fp"),
        select(state.last_notified_at).where(*key).scalar_subquery().label("cooldown_at"),
    )


@functools.cache
def summary_statement(*, by_schedule: bool) -> Select[Any]:
    """The summary's aggregates over `_counted`, bound by `summary_params`.

    Over short aliases: psycopg re-parses a statement longer than 4 kB on every execution, and a
    deduped schedule run's, which carries this one, would be.
    """
    source = _counted(by_schedule=by_schedule)
    n, real = source.c.n, ~source.c.dry_run

    def total(condition: ColumnElement[bool]):  # type: ignore[no-untyped-def]
        return func.sum(case((condition, n)))  # None over no rows: `_summary_read` makes it 0

    def of(outcome: str) -> ColumnElement[bool]:
        return and_(real, source.c.outcome == literal_column(f"'{outcome}'"))  # no bind: shorter

    columns = [
        total(real).label("trigger_count"),
        total(source.c.dry_run).label("dry_run_count"),
        _latest(source.c.at, real).label("last_triggered_at"),
        _latest(source.c.at, of("executed")).label("last_executed_at"),
    ]
    columns += [total(of(o)).label(f"{o}_count") for o in TRIGGER_OUTCOMES]
    return select(*columns).select_from(source)


def _counted(*, by_schedule: bool) -> Subquery:
    """(outcome, dry_run, at, n) of the window's triggers: a row per trigger of its first day
    (n = 1, at its start), a row per outcome of each day after (n = its count, at its newest
    start). Each part reads its own index range."""
    runs = TriggerRun.__table__.alias("r").c
    days = TriggerDayCount.__table__.alias("d").c

    def bound(column, name: str):  # type: ignore[no-untyped-def]
        return bindparam(name, type_=column.type)

    first = [
        runs.org_id == bound(runs.org_id, "org_id"),
        runs.started_at >= bound(runs.started_at, "since"),
        runs.started_at < bound(runs.started_at, "first_end"),
    ]
    after = [
        days.org_id == bound(days.org_id, "org_id"),
        days.day >= bound(days.day, "first_day"),
        days.trigger_count > literal_column("0"),
    ]
    if by_schedule:
        first.append(runs.schedule_name == bound(runs.schedule_name, "schedule_name"))
        after.append(days.schedule_name == bound(days.schedule_name, "schedule_name"))
    one = literal_column("1").label("n")
    return union_all(
        select(runs.outcome, runs.dry_run, runs.started_at.label("at"), one).where(*first),
        select(days.outcome, days.dry_run, days.last_started_at, days.trigger_count).where(*after),
    ).subquery("t")


def _zeroed(row: dict[str, Any]) -> dict[str, Any]:
    """The summary's counts, 0 where its statement's sums found no row."""
    return {k: 0 if v is None and k.endswith("_count") else v for k, v in row.items()}


def _summary_read(
    row: dict[str, Any],
    *,
    org_id: uuid.UUID,
    schedule_name: str | None,
    window_days: int,
    items: list[TriggerItem] | None,
) -> SummaryRead:
    row = _zeroed(row)
    return SummaryRead(
        org_id=org_id,
        schedule_name=schedule_name or ALL_SCHEDULES,
        window_days=window_days,
        execution_rate=_rate(row["executed_count"], row["trigger_count"]),
        dedupe_hit_rate=_rate(row["deduped_count"], row["trigger_count"]),
        items=items,
        **row,
    )


def alert_state(
    session: Session, *, org_id: uuid.UUID, schedule_name: str | None
) -> TriggerAlertState | None:
    return session.get(TriggerAlertState, (org_id, schedule_name or ALL_SCHEDULES))


def latest_alert_state(session: Session, *, org_id: uuid.UUID) -> TriggerAlertState | None:
    """The org's most recently notified cooldown row, over every schedule."""
    return session.scalars(
        select(TriggerAlertState)
        .where(TriggerAlertState.org_id == org_id)
        .order_by(TriggerAlertState.last_notified_at.desc())
        .limit(1)
    ).first()


def alert_delivery(
    session: Session,
    *,
    org_id: uuid.UUID,
    schedule_name: str | None,
    window_days: int,
    now: datetime,
) -> AlertDeliveryRead:
    """Alert delivery: notify events by outcome in the window, and the cooldown state.

    docs/reference/scheduler.md#alert-delivery

    No schedule name: every schedule.
    """
    name = schedule_name or ALL_SCHEDULES
    scope = [
        NotifyEvent.org_id == org_id,
        NotifyEvent.created_at >= now - timedelta(days=window_days),
    ]
    if schedule_name is not None:
        scope.append(NotifyEvent.schedule_name == schedule_name)
    columns = [
        func.count().label("total_notify_events"),
        func.max(NotifyEvent.created_at).label("last_event_at"),
    ]
    columns += [_count(NotifyEvent.outcome == o).label(f"{o}_count") for o in anomaly.OUTCOMES]
    columns += [
        _latest(NotifyEvent.created_at, NotifyEvent.outcome == o).label(f"last_{o}_at")
        for o in ("sent", "failed", "suppressed")
    ]
    row = session.execute(select(*columns).where(*scope)).one()._asdict()
    state = (
        alert_state(session, org_id=org_id, schedule_name=name)
        if schedule_name is not None
        else latest_alert_state(session, org_id=org_id)
    )
    return AlertDeliveryRead(
        org_id=org_id,
        schedule_name=name,
        window_days=window_days,
        last_notified_at=state.last_notified_at if state else None,
        alert_fingerprint=state.alert_fingerprint if state else None,
        **row,
    )


def trigger_history(
    session: Session, *, org_id: uuid.UUID, since: datetime, schedule_name: str | None = None
) -> list[Any]:
    """Real triggers since `since`, oldest first: (started_at, outcome, promote_result), one query.

    The console's charts bucket these by day; a window's triggers are few (one per window plus
    retries), so the rows stay small.
    """
    where = [
        TriggerRun.org_id == org_id,
        TriggerRun.started_at >= since,
        TriggerRun.dry_run.is_(False),
    ]
    if schedule_name is not None:
        where.append(TriggerRun.schedule_name == schedule_name)
    return list(
        session.execute(
            select(TriggerRun.started_at, TriggerRun.outcome, TriggerRun.promote_result)
            .where(*where)
            .order_by(TriggerRun.started_at)
        ).all()
    )


def recent_notify_events(session: Session, *, org_id: uuid.UUID, limit: int) -> list[NotifyEvent]:
    """The org's newest anomaly-notify events, over every schedule (the console's schedule page)."""
    query = (
        select(NotifyEvent)
        .where(NotifyEvent.org_id == org_id)
        .order_by(NotifyEvent.created_at.desc(), NotifyEvent.id)
        .limit(limit)
    )
    return list(session.scalars(query))
