"""Drift classification: pure rules over two version strings, no I/O.

docs/reference/drift.md#classification

Parsing is python-semver's strict SemVer 2.0.0 grammar; results are cached because a scan
sees the same (bound, current) pairs over and over.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, get_args

from semver import Version

Drift = Literal["none", "warning", "breaking", "invalid"]  # lowest to highest
MinDrift = Literal["warning", "breaking", "invalid"]  # a threshold worth acting on
DRIFT_LEVELS: tuple[str, ...] = get_args(Drift)
SEVERITY: dict[str, int] = {level: rank for rank, level in enumerate(DRIFT_LEVELS)}


@dataclass(frozen=True)
class DriftResult:
    """The drift of one (bound, current) pair and why, in words an operator can act on."""

    drift: str
    reason: str


@lru_cache(maxsize=65536)
def parse_version(value: str | None) -> Version | None:
    """Strict SemVer 2.0.0, or None for anything else (missing, empty, `v1.2`, leading zeros...)."""
    if not value:
        return None
    try:
        return Version.parse(value)
    except (ValueError, TypeError):
        return None


def is_valid_version(value: str | None) -> bool:
    """Whether `value` is a SemVer 2.0.0 version string."""
    return parse_version(value) is not None


def meets(drift: str, min_drift: str) -> bool:
    """Whether `drift` is at least as severe as `min_drift`."""
    return SEVERITY[drift] >= SEVERITY[min_drift]


def levels_at_least(min_drift: str) -> tuple[str, ...]:
    """The drift levels a `min_drift` filter keeps, highest first."""
    return tuple(level for level in reversed(DRIFT_LEVELS) if meets(level, min_drift))


def _invalid_reason(side: str, value: str | None) -> str:
    if value is None:
        return f"{side} version is missing"
    if value == "":
        return f"{side} version is empty"
    return f"{side} version {value!r} is not valid SemVer"


def _changed_part(b: Version, c: Version) -> str:
    for part in ("major", "minor", "patch"):
        if getattr(b, part) != getattr(c, part):
            return f"{part} version"
    return "pre-release"


@lru_cache(maxsize=65536)
def classify(bound: str | None, current: str | None) -> DriftResult:
    """Classify the drift of a binding's bound version against the definition's current one."""
    b, c = parse_version(bound), parse_version(current)
    if b is None or c is None:
        problems = [
            _invalid_reason(side, value)
            for side, value, parsed in (("bound", bound, b), ("current", current, c))
            if parsed is None
        ]
        return DriftResult("invalid", "; ".join(problems))
    arrow = f"{bound} → {current}"
    if b.compare(c) == 0:
        if bound == current:
            return DriftResult("none", f"bound version {bound} is the current version")
        return DriftResult("none", f"versions differ only in build metadata {arrow}")
    changed = _changed_part(b, c)
    direction = "" if b.compare(c) < 0 else " (current is older than bound)"
    if b.major != c.major:
        return DriftResult("breaking", f"{changed} changed {arrow}{direction}")
    if b.major == 0 and (b.minor != c.minor or b.minor == 0):
        stage = "0.0.z" if b.minor == 0 and c.minor == 0 else "0.y.z"
        return DriftResult(
            "breaking",
            f"{changed} changed {arrow}{direction}; "
            f"in initial development ({stage}) that may break anything",
        )
    return DriftResult("warning", f"{changed} changed {arrow}{direction}")
