"""Lifecycle rules against the product's transition table, transcribed by hand.

The oracle is docs/reference/resources.md (patterns): the main flow one step forward or back,
`regressed` from fixed|verifying|resolved back in at diagnosed|assigned|in_progress, and
`wont_fix` from any open status. Nothing here is derived from `lifecycle` itself.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from driftwarden.patterns import lifecycle

STATUSES = (
    "detected",
    "diagnosed",
    "assigned",
    "in_progress",
    "fixed",
    "verifying",
    "resolved",
    "regressed",
    "wont_fix",
)
CLOSED = {"resolved", "wont_fix"}

ALLOWED = {
    # one step forward
    ("detected", "diagnosed"),
    ("diagnosed", "assigned"),
    ("assigned", "in_progress"),
    ("in_progress", "fixed"),
    ("fixed", "verifying"),
    ("verifying", "resolved"),
    # one step back
    ("diagnosed", "detected"),
    ("assigned", "diagnosed"),
    ("in_progress", "assigned"),
    ("fixed", "in_progress"),
    ("verifying", "fixed"),
    ("resolved", "verifying"),
    # regressed: in from fixed|verifying|resolved, out to diagnosed|assigned|in_progress
    ("fixed", "regressed"),
    ("verifying", "regressed"),
    ("resolved", "regressed"),
    ("regressed", "diagnosed"),
    ("regressed", "assigned"),
    ("regressed", "in_progress"),
    # wont_fix from every open status
    ("detected", "wont_fix"),
    ("diagnosed", "wont_fix"),
    ("assigned", "wont_fix"),
    ("in_progress", "wont_fix"),
    ("fixed", "wont_fix"),
    ("verifying", "wont_fix"),
    ("regressed", "wont_fix"),
}
PAIRS = list(itertools.permutations(STATUSES, 2))


def test_the_code_knows_exactly_the_documented_statuses() -> None:
    assert sorted(lifecycle.STATUSES) == sorted(STATUSES)
    assert lifecycle.CLOSED_STATUSES == CLOSED


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_pair_follows_the_table(current: str, target: str) -> None:
    assert lifecycle.can_transition(current, target) is ((current, target) in ALLOWED)


@pytest.mark.parametrize("status", STATUSES)
def test_allowed_targets_name_the_same_moves(status: str) -> None:
    assert lifecycle.allowed_targets(status) == {b for a, b in ALLOWED if a == status}


@pytest.mark.parametrize("status", STATUSES)
def test_open_means_not_resolved_or_wont_fix(status: str) -> None:
    assert lifecycle.is_open(status) is (status not in CLOSED)


def test_history_entry_is_json_ready_with_z_times() -> None:
    key = uuid.uuid4()
    at = datetime(2026, 11, 25, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    entry = lifecycle.history_entry(
        from_status="fixed",
        to_status="regressed",
        at=at,
        by_api_key_id=key,
        note="came back",
        forced=False,
    )
    assert entry == {
        "from": "fixed",
        "to": "regressed",
        "at": "2026-11-25T12:00:00Z",
        "by_api_key_id": str(key),
        "note": "came back",
        "forced": False,
    }
    assert (
        lifecycle.history_entry(
            from_status=None, to_status="detected", at=at, by_api_key_id=None, note=None
        )["by_api_key_id"]
        is None
    )
