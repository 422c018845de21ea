"""The built-in scheduler's decisions (docs/reference/scheduler.md, built-in scheduler).

`driftwarden worker --schedule` asks `due_runs` which enabled orgs' windows have opened and not
executed, then runs each through `flows.schedule_run`, the same path as
`POST /system/contracts/drift/schedule-run`. Each worker waits its own random delay into the
window and skips a window that already executed; when two still race, the trigger's window claim
(a partial unique index) lets one execute and records the other as `deduped`, so any number of
workers execute each window once. Reads only; the caller owns the transaction.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from driftwarden.scheduler import windows
from driftwarden.scheduler.models import DriftPolicy, TriggerRun
from driftwarden.scheduler.summary import newest_trigger_value

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


def due_runs(session: Session, *, now: datetime, delay: Delay) -> list[DueRun]:
    """Enabled orgs whose window opened (plus delay) and has not executed, unless it just failed.

    One query: each policy joined to its schedule's newest org-wide trigger (key, outcome, time).
    """
    last = aliased(TriggerRun)
    newest = newest_trigger_value(
        TriggerRun.id,
        org_id=DriftPolicy.org_id,
        schedule_name=DriftPolicy.schedule_name,
        executed_only=False,
        org_wide_only=True,
    )
    rows = session.execute(
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
    ).all()
    due = []
    for org_id, name, minutes, last_key, last_outcome, last_started in rows:
        window = windows.window_for(now, minutes)
        if now < window.start + timedelta(seconds=delay(org_id, window)):
            continue
        this_window = windows.dedupe_key(
            org_id=org_id, schedule_name=name, window=window, agent_id=None
        )
        if last_key == this_window and not _still_due(now, window, last_outcome, last_started):
            continue
        due.append(DueRun(org_id, name, window))
    return due
