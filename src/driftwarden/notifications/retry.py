"""Pure rules: what one attempt's outcome means for the message (sent, retry when, or dead)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

JITTER = 0.10
# A Retry-After longer than this is treated as this: a receiver should not park an alert for days.
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0
RETRY_AFTER_STATUSES = frozenset({429, 503})
# Failures no retry can cure: the destination itself is refused (docs/reference/notifications.md).
NEVER_RETRIED = frozenset({"URL_FORBIDDEN"})


@dataclass(frozen=True)
class Attempt:
    """What happened on the wire for one delivery attempt."""

    status_code: int | None
    error_code: str | None = None  # None on a 2xx; else TIMEOUT, CONNECTION_ERROR, HTTP_<code>, ...
    error: str | None = None
    retry_after: float | None = None
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | pending | dead
    next_attempt_at: datetime | None
    disable_endpoint: bool = False


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date).

    None when absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def jittered(delay: float, rng: random.Random | None = None) -> float:
    """The scheduled delay, spread by ±10 % so a burst of failures does not retry in lockstep."""
    return delay * (rng or random).uniform(1 - JITTER, 1 + JITTER)


def next_delay(
    attempt: Attempt, *, attempt_count: int, delays: list[float], rng: random.Random | None = None
) -> float:
    """Seconds to wait before the next attempt after `attempt_count` attempts have been made."""
    delay = jittered(delays[min(attempt_count, len(delays)) - 1], rng)
    if attempt.status_code in RETRY_AFTER_STATUSES and attempt.retry_after is not None:
        delay = max(delay, min(attempt.retry_after, MAX_RETRY_AFTER_SECONDS))
    return delay


def decide(
    attempt: Attempt,
    *,
    attempt_count: int,
    max_attempts: int,
    delays: list[float],
    now: datetime,
    rng: random.Random | None = None,
) -> Outcome:
    """Only a 2xx is success; 410 or a forbidden address kill the message; the rest retry."""
    if attempt.ok:
        return Outcome("sent", None)
    if attempt.status_code == 410:
        return Outcome("dead", None, disable_endpoint=True)
    if attempt.error_code in NEVER_RETRIED:
        return Outcome("dead", None)
    if attempt_count >= max_attempts:
        return Outcome("dead", None)
    delay = next_delay(attempt, attempt_count=attempt_count, delays=delays, rng=rng)
    return Outcome("pending", now + timedelta(seconds=delay))
