"""Pure rules of the trigger: aligned windows, the dedupe key, outcome precedence.

docs/reference/scheduler.md#trigger
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What a schedule may be called (docs/reference/scheduler.md, policy): URL- and log-safe.
SCHEDULE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
TriggerOutcome = Literal["executed", "deduped", "failed", "policy_disabled", "promotion_disabled"]
TRIGGER_OUTCOMES: tuple[str, ...] = get_args(TriggerOutcome)
# How far before a worker's last tick it looks for writes since (a policy change, a refused
# trigger): a write commits within a minute of its timestamp, and the processes' clocks agree
# that well. The built-in scheduler and the watchdog both rely on it.
CHANGE_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime
    minutes: int


def window_for(now: datetime, window_minutes: int) -> Window:
    """The aligned bucket containing `now`: floor(epoch / size) * size."""
    if window_minutes <= 0:
        raise ValueError("window_minutes must be positive")
    size = window_minutes * 60
    epoch_seconds = int((now - EPOCH).total_seconds() // 1)
    start = EPOCH + timedelta(seconds=(epoch_seconds // size) * size)
    return Window(start=start, end=start + timedelta(seconds=size), minutes=window_minutes)


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dedupe_key(
    *, org_id: uuid.UUID | str, schedule_name: str, window: Window, agent_id: uuid.UUID | str | None
) -> str:
    """`{org_id}:{schedule_name}:{window_minutes}:{window_start}:{agent_id or '*'}`."""
    return f"{org_id}:{schedule_name}:{window.minutes}:{iso_z(window.start)}:{agent_id or '*'}"


def gate_outcome(*, policy_enabled: bool, promote_to_patterns: bool, force: bool) -> str | None:
    """Outcomes decided before the window is looked at (steps 1-2), or None to go on."""
    if force:
        return None
    if not policy_enabled:
        return "policy_disabled"
    if not promote_to_patterns:
        return "promotion_disabled"
    return None
