"""Pure rules of the anomaly notify: reasons, fingerprint, cooldown, outcome.

docs/reference/scheduler.md#anomaly-notify
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, get_args

DEDUPE_HIT_RATE_HIGH = "dedupe_hit_rate_high"
EXECUTION_RATE_LOW = "execution_rate_low"
ALL_SCHEDULES = "_all"
NotifyOutcome = Literal["sent", "failed", "suppressed", "skipped", "dry_run"]
OUTCOMES: tuple[str, ...] = get_args(NotifyOutcome)
WouldOutcome = Literal["send", "skipped", "suppressed"]


def anomaly_reasons(
    *,
    dedupe_hit_rate: float | None,
    execution_rate: float | None,
    max_dedupe_hit_rate: float,
    min_execution_rate: float,
) -> list[str]:
    """The sorted reasons the rates breach the thresholds.

    No triggers (null rates) is no anomaly.
    """
    reasons = []
    if dedupe_hit_rate is not None and dedupe_hit_rate >= max_dedupe_hit_rate:
        reasons.append(DEDUPE_HIT_RATE_HIGH)
    if execution_rate is not None and execution_rate < min_execution_rate:
        reasons.append(EXECUTION_RATE_LOW)
    return sorted(reasons)


def fingerprint(org_id: uuid.UUID | str, schedule_name: str | None, reasons: list[str]) -> str:
    """Identity of an anomaly: changes with the set of reasons, never with the rates."""
    material = f"{org_id}|{schedule_name or ALL_SCHEDULES}|{','.join(sorted(set(reasons)))}"
    return hashlib.sha256(material.encode()).hexdigest()


def cooldown_until(
    *,
    state_fingerprint: str | None,
    last_notified_at: datetime | None,
    current_fingerprint: str,
    cooldown_minutes: int,
) -> datetime | None:
    """When the cooldown of the last sent alert ends, if that alert had this fingerprint."""
    if last_notified_at is None or state_fingerprint != current_fingerprint:
        return None
    return last_notified_at + timedelta(minutes=cooldown_minutes)


@dataclass(frozen=True)
class NotifyDecision:
    """What the notify step does: `send`, or one of the outcomes that sends nothing."""

    action: str  # send | skipped | suppressed | dry_run
    would: str  # what a non-dry run would do: send | skipped | suppressed
    suppressed: bool


def decide_notify(
    *,
    dry_run: bool,
    anomaly_detected: bool,
    alert_enabled: bool,
    force_notify: bool,
    cooldown_ends: datetime | None,
    now: datetime,
) -> NotifyDecision:
    """Outcome precedence: dry_run, skipped, suppressed, then send.

    docs/reference/scheduler.md#anomaly-notify step 4
    """
    if not force_notify and not (anomaly_detected and alert_enabled):
        would = "skipped"
    elif not force_notify and cooldown_ends is not None and now < cooldown_ends:
        would = "suppressed"
    else:
        would = "send"
    action = "dry_run" if dry_run else would
    return NotifyDecision(action=action, would=would, suppressed=would == "suppressed")
