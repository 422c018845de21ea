"""Pure rules of a schedule's health: new, up, late, down or disabled, like a dead man's switch.

(docs/reference/scheduler.md, schedule status.)

The next execution is due by the end of the window after the last executed one (`expected_by`):
until then the schedule is `up`. It is `late` for `grace_minutes` after that moment and `down`
from then on. With one missed window, `expected_by` is the moment the current window opened,
as the reference page words it; with several missed windows the schedule stays `down` (measuring
the grace from each new window instead would never let a 5-minute schedule, whose grace is a
whole window, turn `down`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

from driftwarden.scheduler import windows

ScheduleState = Literal["new", "up", "late", "down", "disabled"]
# Trigger outcomes that mean the policy refused the run: the schedule runs, the policy is off.
GATED_OUTCOMES = ("policy_disabled", "promotion_disabled")
STATUSES: tuple[str, ...] = get_args(ScheduleState)
DISABLED = "disabled"
MIN_GRACE_MINUTES = 5.0
GRACE_FRACTION = 0.1
# The watch actions that send an alert (`watch_action`); `quiet` only records the new status.
ALERTING = frozenset({"missed", "recovered", "disabled"})


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
    last_gated_at: datetime | None = None


def default_grace_minutes(window_minutes: int) -> float:
    """10 % of the window, at least 5 minutes."""
    return max(MIN_GRACE_MINUTES, window_minutes * GRACE_FRACTION)


def being_triggered(
    last_gated_at: datetime | None, *, now: datetime, window_minutes: int, grace_minutes: float
) -> bool:
    """A real trigger was refused by the policy within the last window + grace: someone calls."""
    span = timedelta(minutes=window_minutes + grace_minutes)
    return last_gated_at is not None and last_gated_at >= now - span


def schedule_status(
    *,
    window_minutes: int,
    last_window_start: datetime | None,
    now: datetime,
    grace_minutes: float | None = None,
    last_executed_at: datetime | None = None,
    policy_off: bool = False,
    last_gated_at: datetime | None = None,
) -> ScheduleStatus:
    """The status of a schedule whose last executed trigger had `last_window_start` (None: never).

    `disabled` wins when the policy is off (its trigger gate refuses runs) and `last_gated_at`,
    the newest real trigger it refused, is recent enough to say the schedule is being triggered.
    """
    grace = default_grace_minutes(window_minutes) if grace_minutes is None else grace_minutes
    current = windows.window_for(now, window_minutes)
    size = timedelta(minutes=window_minutes)
    common = {
        "window_minutes": window_minutes,
        "grace_minutes": grace,
        "current_window_start": current.start,
        "last_window_start": last_window_start,
        "last_executed_at": last_executed_at,
        "last_gated_at": last_gated_at,
    }
    expected_by = None if last_window_start is None else last_window_start + 2 * size
    missed = (
        None
        if last_window_start is None
        else max(0, (current.start - last_window_start) // size - 1)
    )
    if policy_off and being_triggered(
        last_gated_at, now=now, window_minutes=window_minutes, grace_minutes=grace
    ):
        status = "disabled"
    elif expected_by is None:
        status = "new"
    elif now < expected_by:
        status = "up"
    elif now < expected_by + timedelta(minutes=grace):
        status = "late"
    else:
        status = "down"
    return ScheduleStatus(status=status, expected_by=expected_by, missed_windows=missed, **common)


def watch_action(
    last_status: str | None, status: str, *, new_outage: bool = False, policy_off: bool = False
) -> str | None:
    """What the watchdog does when it last recorded `last_status` and now sees `status`.

    `last_status` None: never recorded.

    `missed`, `recovered` and `disabled` send an alert; `quiet` only records the new status. A
    `down` schedule stays `down` until it runs again, so each outage alerts once and recovers once;
    `new_outage` says it ran and stopped again between two looks (its `down_since` moved). A
    `disabled` episode lasts while the policy stays off, and ends when it is seen on again.
    """
    old = last_status or "new"
    if status == "disabled":
        return None if old == "disabled" else "disabled"
    if old == "disabled":
        if policy_off:
            return None  # the same episode: no longer triggered, but the policy is still off
        return "missed" if status == "down" else "quiet"
    if old == "down" and status == "down":
        return "missed" if new_outage else None
    if old == status:
        return None
    if old == "down":
        return {"up": "recovered", "new": "quiet"}.get(status)
    return "missed" if status == "down" else "quiet"


def down_since(computed: ScheduleStatus) -> datetime | None:
    """The moment the schedule turns (or turned) down.

    The same on every worker, whenever it looks.
    """
    if computed.expected_by is None:
        return None
    return computed.expected_by + timedelta(minutes=computed.grace_minutes)


def next_change(computed: ScheduleStatus, *, now: datetime) -> datetime | None:
    """The next moment time alone changes the status (to `late`, then `down`), for the watchdog.

    None when only a write can change it: a trigger (`new`, `down`, `disabled`) or a policy change.
    The end of a `disabled` episode's triggering is not one: the episode lasts while the policy is
    off, and the policy's change is a write.
    """
    if computed.status == DISABLED or computed.expected_by is None:
        return None
    turns = (computed.expected_by, down_since(computed))
    return next((moment for moment in turns if moment is not None and moment > now), None)
