"""The built-in scheduler's decisions (docs/reference/scheduler.md, built-in scheduler).

`driftwarden worker --schedule` asks `due_runs` which enabled orgs' windows have opened and not
executed, then runs each through `flows.schedule_run`, the same path as
`POST /system/contracts/drift/schedule-run`. Each worker waits its own random delay into the
window and skips a window that already executed; when two still race, the trigger's window claim
(a partial unique index) lets one execute and records the other as `deduped`, so any number of
workers execute each window once. Reads only; the caller owns the transaction.
"""

from __future__ import annotations

import heapq
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session, aliased

from driftwarden.scheduler import windows
from driftwarden.scheduler.models import DriftPolicy, TriggerRun
from driftwarden.scheduler.status_reads import newest_trigger_value

MAX_DELAY_SECONDS = 60.0


@dataclass(frozen=True)
class DueRun:
    org_id: uuid.UUID
    schedule_name: str
    window: windows.Window

    @property
    def idempotency_key(self) -> str:
        """Derived from org, schedule and window: the same on every worker."""
        epoch = int((self.window.start - windows.EPOCH).total_seconds())
        return (
            f"driftwarden-autorun:{self.org_id}:{self.schedule_name}:{self.window.minutes}:{epoch}"
        )


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


def _still_due(
    now: datetime, window: windows.Window, last_outcome: str | None, last_started: datetime | None
) -> bool:
    """A window whose newest org-wide trigger is this window's: due again only after a failure."""
    if last_outcome in ("executed", "deduped"):
        return False
    return not (
        last_outcome == "failed"
        and last_started is not None
        and now - last_started < retry_after(window)
    )


@dataclass
class DueTracker:
    """What one worker's scheduler has read, so a tick re-reads only the orgs that may be due.

    The first tick reads every enabled policy; later ones read those whose next window (plus this
    worker's delay) has opened, and those changed since. Only a cache: the trigger's window claim
    still decides, and a fresh tracker (a restart) reads everything again.
    """

    since: datetime | None = None
    next_at: dict[uuid.UUID, datetime] = field(default_factory=dict)
    heap: list[tuple[datetime, uuid.UUID]] = field(default_factory=list)

    def recheck(self, org_id: uuid.UUID, at: datetime) -> None:
        self.next_at[org_id] = at
        heapq.heappush(self.heap, (at, org_id))

    def pop_due(self, now: datetime) -> list[uuid.UUID]:
        """Orgs whose recheck time has come; an entry superseded by a later recheck is skipped."""
        due = []
        while self.heap and self.heap[0][0] <= now:
            at, org_id = heapq.heappop(self.heap)
            if self.next_at.get(org_id) == at:
                del self.next_at[org_id]
                due.append(org_id)
        return due


def due_runs(
    session: Session, *, now: datetime, delay: Delay, tracker: DueTracker | None = None
) -> list[DueRun]:
    """Enabled orgs whose window opened (plus delay) and has not executed, unless it just failed.

    One query: each policy joined to its schedule's newest org-wide trigger (key, outcome, time);
    with a tracker that has read once, only the policies it says may be due, or changed since.
    """
    query = _due_query()
    if tracker is not None and tracker.since is not None:
        recheck = tracker.pop_due(now)
        query = query.where(
            or_(
                DriftPolicy.updated_at >= tracker.since - windows.CHANGE_MARGIN,
                DriftPolicy.org_id.in_(recheck),
            )
        )
    try:
        rows = session.execute(query).all()
    except Exception:
        if tracker is not None:  # what was popped is forgotten: read everything next time
            tracker.since = None
        raise
    due = []
    for org_id, name, minutes, last_key, last_outcome, last_started in rows:
        window = windows.window_for(now, minutes)
        opens = window.start + timedelta(seconds=delay(org_id, window))
        this_window = windows.dedupe_key(
            org_id=org_id, schedule_name=name, window=window, agent_id=None
        )
        if now < opens:
            next_at = opens
        elif last_key == this_window and not _still_due(now, window, last_outcome, last_started):
            following = windows.window_for(window.end, minutes)
            next_at = following.start + timedelta(seconds=delay(org_id, following))
            if last_outcome == "failed" and last_started is not None:
                next_at = min(next_at, last_started + retry_after(window))
        else:
            due.append(DueRun(org_id, name, window))
            next_at = now  # read again next tick, to see how its run ended
        if tracker is not None:
            tracker.recheck(org_id, next_at)
    if tracker is not None:
        tracker.since = now
    return due


def _due_query() -> Select[Any]:
    last = aliased(TriggerRun)
    newest = newest_trigger_value(
        TriggerRun.id,
        org_id=DriftPolicy.org_id,
        schedule_name=DriftPolicy.schedule_name,
        executed_only=False,
        org_wide_only=True,
    )
    return (
        select(
            DriftPolicy.org_id,
            DriftPolicy.schedule_name,
            DriftPolicy.schedule_window_minutes,
            last.dedupe_key,
            last.outcome,
            last.started_at,
        )
        .select_from(DriftPolicy)
        .outerjoin(last, last.id == newest)
        .where(DriftPolicy.enabled.is_(True), DriftPolicy.promote_to_patterns.is_(True))
        .order_by(DriftPolicy.org_id)
    )
