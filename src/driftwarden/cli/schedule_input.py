"""The schedule script's variables, validated as the script validates them (exit 2 on a bad one).

Numbers are checked as strings (digits, and how many) before any arithmetic, as the script must
do because bash integers wrap (docs/reference/operations.md, the schedule script).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

MAX_DIGITS = 9  # numbers without a range: checked as strings before any arithmetic
_OPTIONAL = (
    ("SCHEDULE_NAME", "schedule_name", str),
    ("WINDOW_MINUTES", "window_minutes", int),
    ("SUMMARY_WINDOW_DAYS", "summary_window_days", int),
    ("DRY_RUN", "dry_run", bool),
    ("FORCE", "force", bool),
    ("FORCE_NOTIFY", "force_notify", bool),
    ("AGENT_ID", "agent_id", str),
    ("ESCALATION_AGENT_ID", "escalation_agent_id", str),
    ("MIN_DRIFT", "min_drift", str),
    ("LIMIT", "limit", int),
)
_RANGES = {
    "WINDOW_MINUTES": (5, 10080),
    "SUMMARY_WINDOW_DAYS": (1, 365),
    "LIMIT": (1, 1000),
}


class InputError(ValueError):
    """Bad configuration, reported before any request is made."""


def _uuid(name: str, value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise InputError(f"{name} must be a UUID, got {value!r}") from exc


def whole_number(name: str, value: str, bounds: tuple[int, int] | None = None) -> int:
    """ASCII digits, their count checked before int() (as the script must, against overflow)."""
    if not re.fullmatch(r"[0-9]+", value):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    digits = value.lstrip("0") or "0"
    if bounds is None:
        if len(digits) > MAX_DIGITS:
            raise InputError(f"{name} must have at most {MAX_DIGITS} digits, got {value!r}")
        return int(digits)
    low, high = bounds
    if len(digits) > len(str(high)) or not low <= int(digits) <= high:
        raise InputError(f"{name} must be {low}-{high}, got {value!r}")
    return int(digits)


def boolean(name: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise InputError(f"{name} must be true or false, got {value!r}")
    return value == "true"


def _optional(name: str, value: str, kind: type) -> Any:
    if kind is bool:
        return boolean(name, value)
    if kind is int:
        return whole_number(name, value, _RANGES[name])
    if name == "MIN_DRIFT" and value not in ("warning", "breaking", "invalid"):
        raise InputError(f"MIN_DRIFT must be warning, breaking or invalid, got {value!r}")
    if name == "SCHEDULE_NAME" and not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,63}", value):
        raise InputError(f"SCHEDULE_NAME must match ^[a-z0-9][a-z0-9_.-]{{0,63}}$, got {value!r}")
    if name.endswith("AGENT_ID"):
        _uuid(name, value)
    return value


def request_body(env: Mapping[str, str]) -> dict[str, Any]:
    """The JSON body: ORG_ID and every optional variable that is set (the policy has the rest)."""
    org_id = env.get("ORG_ID") or ""
    if not org_id:
        raise InputError("ORG_ID is required")
    _uuid("ORG_ID", org_id)
    body: dict[str, Any] = {"org_id": org_id}
    for name, field, kind in _OPTIONAL:
        if env.get(name):
            body[field] = _optional(name, env[name], kind)
    return body
