"""Which schedules a watchdog tick reads, and what it records without alerting.

(docs/reference/scheduler.md#watchdog.) A full tick reads every watched schedule. A worker's later
ticks read only the schedules whose status may have changed since its last one: those due by
`next_check_at` (the moment time alone changes their status, stored with the watch state and so
shared by every worker), those whose policy changed, and those with a trigger that can move them
(an execution while `new`, `late` or `down`; a refused trigger while not `disabled`). A full tick
every `FULL_EVERY` still reads everything, for what no timestamp shows (a pruned trigger, a row
written by hand). Callers own the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CompoundSelect, and_, bindparam, delete, exists, func, or_, select, union
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session, aliased

from driftwarden.db.helpers import chunked, dialect_insert
from driftwarden.scheduler import status as status_rules
from driftwarden.scheduler.models import REFUSED, DriftPolicy, ScheduleWatchState, TriggerRun
from driftwarden.scheduler.schemas import PolicyRead
from driftwarden.scheduler.status_reads import newest_trigger_value, policy_off
from driftwarden.scheduler.windows import CHANGE_MARGIN

W = ScheduleWatchState
# The longest window plus its grace: older refused triggers cannot make any schedule `disabled`.
GATED_LOOKBACK = timedelta(minutes=10080 + status_rules.default_grace_minutes(10080))
# An executed trigger's `started_at` is taken when its request starts; it commits after its
# promotion, which may take minutes.
TRIGGER_MARGIN = timedelta(minutes=15)
FULL_EVERY = timedelta(hours=1)


@dataclass
class WatchTracker:
    """When this worker last ticked and last read everything; only a cache (a restart reads all)."""

    full_every: timedelta = FULL_EVERY
    since: datetime | None = None
    full_at: datetime | None = None

    def changed_since(self, now: datetime) -> datetime | None:
        """The last tick's time, or None when this tick must read every schedule."""
        if self.since is None or self.full_at is None or now - self.full_at >= self.full_every:
            return None
        return self.since

    def ticked(self, now: datetime, *, full: bool) -> None:
        self.since = now
        if full:
            self.full_at = now


@dataclass(frozen=True)
class Watched:
    """One watched schedule: what it is now, and what the watchdog last recorded."""

    policy: PolicyRead
    status: status_rules.ScheduleStatus
    last_status: str | None
    missed_alert: str | None
    alert_fingerprint: str | None
    missed_notified_at: datetime | None
    down_since: datetime | None
    next_check_at: datetime | None = None

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

    def next_check(self, now: datetime) -> datetime | None:
        """An alert not yet claimed is looked at again next tick; else when time changes it."""
        if self.action in status_rules.ALERTING:
            return now
        return status_rules.next_change(self.status, now=now)


def maybe_changed(*, now: datetime, since: datetime) -> CompoundSelect:
    """The orgs whose schedule status may differ from the one recorded at the last tick.

    Each part reads an index for the few rows it wants: the watch state due by `next_check_at`,
    the policies changed, the few schedules not `up` with an execution since (by the trigger
    index of their own schedule), and the refused triggers since (taken without a promotion, so
    they commit as quickly as a policy write).
    """
    due = select(W.org_id).where(W.next_check_at <= now)
    policies = select(DriftPolicy.org_id).where(DriftPolicy.updated_at >= since - CHANGE_MARGIN)
    executed = exists().where(
        TriggerRun.org_id == W.org_id,
        TriggerRun.schedule_name == W.schedule_name,
        TriggerRun.started_at >= since - TRIGGER_MARGIN,
        TriggerRun.outcome == "executed",
        TriggerRun.dry_run.is_(False),
    )
    recovering = select(W.org_id).where(W.last_status.in_(("new", "late", "down")), executed)
    gated = (
        select(TriggerRun.org_id)
        .outerjoin(
            W, and_(W.org_id == TriggerRun.org_id, W.schedule_name == TriggerRun.schedule_name)
        )
        .where(
            TriggerRun.started_at >= since - CHANGE_MARGIN,
            REFUSED,
            TriggerRun.dry_run.is_(False),
            func.coalesce(W.last_status, "new") != status_rules.DISABLED,
        )
    )
    return union(due, policies, recovering, gated)


def changed_orgs(session: Session, *, now: datetime, since: datetime) -> list[uuid.UUID]:
    """`maybe_changed`, read on its own: the planner then sees how few the orgs are."""
    return list(session.scalars(maybe_changed(now=now, since=since)))


def watched_schedules(
    session: Session, *, now: datetime, org_ids: list[uuid.UUID] | None = None
) -> list[Watched]:
    """Every enabled policy's schedule, and every disabled one still being triggered: one query.

    With `org_ids`, only those orgs', a chunk at a time: no statement when there are none.
    """
    if org_ids is None:
        return _watched(session, _watch_query(now=now), now=now)
    found = []
    for chunk in chunked(org_ids):
        query = _watch_query(now=now).where(DriftPolicy.org_id.in_(chunk))
        found += _watched(session, query, now=now)
    return found


def _watched(session: Session, query: Any, *, now: datetime) -> list[Watched]:
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
        if policy.enabled or computed.status == status_rules.DISABLED:
            found.append(Watched(policy, computed, *state))
    return found


def _watch_query(*, now: datetime) -> Any:
    last = aliased(TriggerRun)
    of_policy = {"org_id": DriftPolicy.org_id, "schedule_name": DriftPolicy.schedule_name}
    newest = newest_trigger_value(TriggerRun.id, executed_only=True, **of_policy)
    gated = newest_trigger_value(
        TriggerRun.started_at,
        executed_only=False,
        outcomes=status_rules.GATED_OUTCOMES,
        **of_policy,
    )
    return (
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
            W.next_check_at,
        )
        .select_from(DriftPolicy)
        .outerjoin(last, last.id == newest)
        .outerjoin(
            W, and_(W.org_id == DriftPolicy.org_id, W.schedule_name == DriftPolicy.schedule_name)
        )
        .where(or_(DriftPolicy.enabled.is_(True), gated >= now - GATED_LOOKBACK))
        .order_by(DriftPolicy.org_id)
    )


def forget_unwatched(session: Session, *, org_ids: list[uuid.UUID] | None = None) -> None:
    """Drop the state of schedules no longer watched, so a re-enabled schedule starts afresh.

    A `disabled` episode's row stays while its policy is off: it is what makes the alert go once.
    With `org_ids` (those `maybe_changed` names: every changed policy is among them), only theirs.

    The row's own status is tested on the row, not inside a subquery: when another worker's claim
    turns the row `disabled` while this DELETE waits for it, PostgreSQL re-checks the new row
    version against the row's own conditions only (a subquery planned as an anti-join keeps what
    it found), and deleting that row would start the episode, and its alert, again.
    """
    policy = [DriftPolicy.org_id == W.org_id, DriftPolicy.schedule_name == W.schedule_name]
    enabled = exists().where(*policy, DriftPolicy.enabled.is_(True))
    unwatched = and_(
        ~enabled, or_(W.last_status != status_rules.DISABLED, ~exists().where(*policy))
    )
    if org_ids is None:
        session.execute(delete(W).where(unwatched))
        return
    for chunk in chunked(org_ids):
        session.execute(delete(W).where(W.org_id.in_(chunk), unwatched))


def insert_missing(session: Session, missing: list[Watched], *, now: datetime) -> None:
    """One row per newly watched schedule, as `new`; a concurrent worker's insert wins quietly."""
    if not missing:
        return
    insert = dialect_insert(session.get_bind().dialect.name, W.__table__)
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
        session.execute(insert.values(chunk).on_conflict_do_nothing())


def record(session: Session, watched: list[Watched], *, now: datetime) -> int:
    """Each status change that alerts nobody, and each moved `next_check_at`: two bulk UPDATEs.

    Each row only from the status this tick read, so a transition another worker claimed stays;
    `updated_at` moves only with the status. Returns the quiet changes.
    """
    quiet, moved = [], []
    for w in watched:
        row = {
            "k_org": w.policy.org_id,
            "k_name": w.policy.schedule_name,
            "k_old": w.last_status or "new",
            "v_next": w.next_check(now),
        }
        if w.action == "quiet":
            quiet.append({**row, "v_status": w.status.status, "v_now": now})
        elif row["v_next"] != w.next_check_at:
            moved.append(row)
    table = W.__table__
    matches = (
        table.c.org_id == bindparam("k_org"),
        table.c.schedule_name == bindparam("k_name"),
        table.c.last_status == bindparam("k_old"),
    )
    changes = (
        (quiet, {"last_status": bindparam("v_status"), "updated_at": bindparam("v_now")}),
        (moved, {}),
    )
    for rows, values in changes:
        statement = (
            sql_update(table).where(*matches).values(next_check_at=bindparam("v_next"), **values)
        )
        for chunk in chunked(rows):
            session.execute(statement, chunk)
    return len(quiet)
