"""§4.8 lifecycle rules as pure functions: every allowed transition and the forbidden rest."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from driftwarden.patterns import lifecycle

ALLOWED = {
    ("detected", "diagnosed"), ("diagnosed", "assigned"), ("assigned", "in_progress"),
    ("in_progress", "fixed"), ("fixed", "verifying"), ("verifying", "resolved"),
    ("diagnosed", "detected"), ("assigned", "diagnosed"), ("in_progress", "assigned"),
    ("fixed", "in_progress"), ("verifying", "fixed"), ("resolved", "verifying"),
    ("fixed", "regressed"), ("verifying", "regressed"), ("resolved", "regressed"),
    ("regressed", "diagnosed"), ("regressed", "assigned"), ("regressed", "in_progress"),
    ("detected", "wont_fix"), ("diagnosed", "wont_fix"), ("assigned", "wont_fix"), ("in_progress", "wont_fix"),
    ("fixed", "wont_fix"), ("verifying", "wont_fix"), ("regressed", "wont_fix"),
}


@pytest.mark.parametrize("pair", sorted(ALLOWED))
def test_allowed_transitions(pair: tuple[str, str]) -> None:
    assert lifecycle.can_transition(*pair)


FORBIDDEN = sorted(set(itertools.permutations(lifecycle.STATUSES, 2)) - ALLOWED)


@pytest.mark.parametrize("pair", FORBIDDEN)
def test_everything_else_is_forbidden(pair: tuple[str, str]) -> None:
    assert not lifecycle.can_transition(*pair)


def test_forbidden_table_holds_the_notable_cases() -> None:
    for pair in [("detected", "resolved"), ("detected", "fixed"), ("resolved", "wont_fix"),
                 ("wont_fix", "detected"), ("regressed", "fixed"), ("detected", "regressed"),
                 ("in_progress", "regressed"), ("regressed", "detected"), ("wont_fix", "regressed")]:
        assert pair in FORBIDDEN


def test_closed_statuses_are_resolved_and_wont_fix() -> None:
    assert {s for s in lifecycle.STATUSES if not lifecycle.is_open(s)} == {"resolved", "wont_fix"}
    assert lifecycle.allowed_targets("wont_fix") == frozenset()
    assert lifecycle.allowed_targets("resolved") == {"verifying", "regressed"}


def test_history_entry_is_json_ready_with_z_times() -> None:
    key = uuid.uuid4()
    at = datetime(2026, 11, 25, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    entry = lifecycle.history_entry(from_status="fixed", to_status="regressed", at=at, by_api_key_id=key,
                                    note="came back", forced=False)
    assert entry == {"from": "fixed", "to": "regressed", "at": "2026-11-25T12:00:00Z",
                     "by_api_key_id": str(key), "note": "came back", "forced": False}
    assert lifecycle.history_entry(from_status=None, to_status="detected", at=at, by_api_key_id=None,
                                   note=None)["by_api_key_id"] is None
