"""Pure rules of a schedule's health (SPEC §8.1): new, up, late or down, like a dead man's switch.

The next execution is due by the end of the window after the last executed one (`expected_by`):
until then the schedule is `up`. It is `late` for `grace_minutes` after that moment and `down`
from then on. With one missed window, `expected_by` is the moment the current window opened,
which is the SPEC's wording; with several missed windows the schedule stays `down` (measuring
the grace from each new window instead would never let a 5-minute schedule, whose grace is a
whole window, turn `down`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from driftwarden.scheduler import windows

ScheduleState = Literal["new", "up", "late", "down"]
STATUSES: tuple[str, ...] = get_args(ScheduleState)
# A schedule still triggered while its policy is off (docs/reference/scheduler.md, schedule status).
DISABLED = "disabled"
REPORTED_STATUSES = (*STATUSES, DISABLED)
MIN_GRACE_MINUTES = 5.0
GRACE_FRACTION = 0.1


@dataclass(frozen=True)
class ScheduleStatus:
    status: str
    window_minutes: int
    grace_minutes: float
    current_window_start: datetime
    last_window_start: datetime | None
    last_executed_at: datetime | None
    expected_by: datetime | None
    missed_windows: int | None


def default_grace_minutes(window_minutes: int) -> float:
    """10 % of the window, at least 5 minutes."""
    return max(MIN_GRACE_MINUTES, window_minutes * GRACE_FRACTION)


def schedule_status(*, window_minutes: int, last_window_start: datetime | None, now: datetime,
                    grace_minutes: float | None = None, last_executed_at: datetime | None = None) -> ScheduleStatus:
    """The status of a schedule whose last executed trigger had `last_window_start` (None: never ran)."""
    grace = default_grace_minutes(window_minutes) if grace_minutes is None else grace_minutes
    current = windows.window_for(now, window_minutes)
    size = timedelta(minutes=window_minutes)
    common = {"window_minutes": window_minutes, "grace_minutes": grace, "current_window_start": current.start,
              "last_window_start": last_window_start, "last_executed_at": last_executed_at}
    if last_window_start is None:
        return ScheduleStatus(status="new", expected_by=None, missed_windows=None, **common)
    expected_by = last_window_start + 2 * size
    missed = max(0, (current.start - last_window_start) // size - 1)
    if now < expected_by:
        status = "up"
    elif now < expected_by + timedelta(minutes=grace):
        status = "late"
    else:
        status = "down"
    return ScheduleStatus(status=status, expected_by=expected_by, missed_windows=missed, **common)


def watch_action(last_status: str | None, status: str, *, new_outage: bool = False) -> str | None:
    """What the watchdog does when it last recorded `last_status` (None: never) and now sees `status`.

    `missed` and `recovered` send an alert; `quiet` only records the new status. A `down`
    schedule stays `down` until it runs again, so each outage alerts once and recovers once;
    `new_outage` says it ran and stopped again between two looks (its `down_since` moved).
    """
    old = last_status or "new"
    if old == "down" and status == "down":
        return "missed" if new_outage else None
    if old == status:
        return None
    if old == "down":
        return {"up": "recovered", "new": "quiet"}.get(status)
    return "missed" if status == "down" else "quiet"


def down_since(computed: ScheduleStatus) -> datetime | None:
    """The moment the schedule turns (or turned) down: the same on every worker, whenever it looks."""
    if computed.expected_by is None:
        return None
    return computed.expected_by + timedelta(minutes=computed.grace_minutes)


def reported_status(computed: ScheduleStatus, *, policy_enabled: bool,
                    last_trigger_window_start: datetime | None) -> str | None:
    """The status reported for a policy's schedule, or None when it is not reported at all.

    An enabled policy's schedule has its computed status; a disabled policy's schedule that is
    still being triggered (its newest trigger's window is the current one or the one before) is
    `disabled`; a disabled one nobody triggers any more is not a schedule
    (docs/reference/scheduler.md, schedule status).
    """
    if policy_enabled:
        return computed.status
    if last_trigger_window_start is None:
        return None
    size = timedelta(minutes=computed.window_minutes)
    return DISABLED if computed.current_window_start - last_trigger_window_start <= size else None
