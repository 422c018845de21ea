"""Issue pattern lifecycle: which status changes are allowed, as pure rules.

docs/reference/resources.md#issue-patterns
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal, get_args

PatternStatus = Literal[
    "detected",
    "diagnosed",
    "assigned",
    "in_progress",
    "fixed",
    "verifying",
    "resolved",
    "regressed",
    "wont_fix",
]
STATUSES: tuple[str, ...] = get_args(PatternStatus)
FLOW = STATUSES[: STATUSES.index("resolved") + 1]  # the main line, one step at a time
CLOSED_STATUSES = frozenset({"resolved", "wont_fix"})
OPEN_STATUSES = frozenset(STATUSES) - CLOSED_STATUSES

REGRESSES_FROM = frozenset({"fixed", "verifying", "resolved"})
REENTERS_AT = frozenset({"diagnosed", "assigned", "in_progress"})


def is_open(status: str) -> bool:
    return status in OPEN_STATUSES


def allowed_targets(current: str) -> frozenset[str]:
    """Statuses reachable from `current` without force."""
    targets: set[str] = set()
    if current in FLOW:
        step = FLOW.index(current)
        if step + 1 < len(FLOW):
            targets.add(FLOW[step + 1])
        if step > 0:
            targets.add(FLOW[step - 1])
    if current in REGRESSES_FROM:
        targets.add("regressed")
    if current == "regressed":
        targets |= REENTERS_AT
    if current in OPEN_STATUSES:
        targets.add("wont_fix")
    return frozenset(targets)


def can_transition(current: str, target: str) -> bool:
    return target in allowed_targets(current)


def iso(at: datetime) -> str:
    """UTC ISO-8601 with `Z`, the way every time in the API is written."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def history_entry(
    *,
    from_status: str | None,
    to_status: str,
    at: datetime,
    by_api_key_id: uuid.UUID | None,
    note: str | None,
    forced: bool = False,
) -> dict[str, Any]:
    """One `status_history` element, JSON-ready."""
    return {
        "from": from_status,
        "to": to_status,
        "at": iso(at),
        "by_api_key_id": str(by_api_key_id) if by_api_key_id else None,
        "note": note,
        "forced": forced,
    }
