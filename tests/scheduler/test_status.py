"""Schedule status rules, pure.

docs/reference/scheduler.md#schedule-status

New, up, late, down at the boundaries, for 5-minute, daily and weekly windows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from driftwarden.scheduler.status import (
    default_grace_minutes,
    down_since,
    next_change,
    schedule_status,
    watch_action,
)

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)  # a Monday 00:00: aligned for 5, 60, 1440 and 10080
WEEK_START = datetime(
    2026, 11, 19, 0, 0, tzinfo=UTC
)  # weekly windows align on the epoch's Thursday


@pytest.mark.parametrize(
    ("window", "grace"),
    [(5, 5), (30, 5), (45, 5), (50, 5), (55, 5.5), (60, 6), (1440, 144), (10080, 1008)],
)
def test_grace_is_ten_percent_of_the_window_at_least_five_minutes(
    window: int, grace: float
) -> None:
    assert default_grace_minutes(window) == grace


def _at(
    window: int,
    last_window_offset: int | None,
    minutes_into_current: float,
    start: datetime = T0,
    grace: float | None = None,
):  # type: ignore[no-untyped-def]
    """Status when now is `minutes_into_current` into the window at `start`.

    The last run was `offset` windows before.
    """
    size = timedelta(minutes=window)
    last = None if last_window_offset is None else start - last_window_offset * size
    return schedule_status(
        window_minutes=window,
        last_window_start=last,
        now=start + timedelta(minutes=minutes_into_current),
        grace_minutes=grace,
    )


# (window, last executed window: how many windows before the current, minutes into current,
#  status, missed)
TABLE = [
    (1440, None, 0, "new", None),
    (1440, None, 1439.99, "new", None),
    (1440, 0, 0, "up", 0),
    (1440, 0, 1439.99, "up", 0),
    (1440, 1, 0, "up", 0),
    (1440, 1, 1439.99, "up", 0),
    (1440, 2, 0, "late", 1),
    (1440, 2, 143.99, "late", 1),
    (1440, 2, 144, "down", 1),
    (1440, 2, 1439, "down", 1),
    (1440, 3, 0, "down", 2),
    (1440, 3, 1, "down", 2),
    (1440, 30, 0, "down", 29),
    (5, 0, 0, "up", 0),
    (5, 1, 4.99, "up", 0),
    (5, 2, 0, "late", 1),
    (5, 2, 4.99, "late", 1),
    (5, 3, 0, "down", 2),
    (5, 3, 0.01, "down", 2),
    (5, 12, 2, "down", 11),
    (60, 2, 5.99, "late", 1),
    (60, 2, 6, "down", 1),
    (1440, -1, 0, "up", 0),  # the last run's window is ahead of this clock: not late
]


@pytest.mark.parametrize(("window", "offset", "into", "status", "missed"), TABLE)
def test_status_table(
    window: int, offset: int | None, into: float, status: str, missed: int | None
) -> None:
    result = _at(window, offset, into)
    assert (result.status, result.missed_windows) == (status, missed)
    assert result.grace_minutes == default_grace_minutes(window)
    assert result.current_window_start == T0


@pytest.mark.parametrize(
    ("offset", "into", "status", "missed"),
    [
        (1, 10079.99, "up", 0),
        (2, 0, "late", 1),
        (2, 1007.99, "late", 1),
        (2, 1008, "down", 1),
        (3, 0, "down", 2),
    ],
)
def test_weekly_windows(offset: int, into: float, status: str, missed: int) -> None:
    result = _at(10080, offset, into, start=WEEK_START)
    assert (result.status, result.missed_windows, result.current_window_start) == (
        status,
        missed,
        WEEK_START,
    )


def test_expected_by_is_the_end_of_the_window_after_the_last_run() -> None:
    ran_this_window = _at(1440, 0, 30)
    assert ran_this_window.expected_by == T0 + timedelta(days=2)
    ran_last_window = _at(1440, 1, 30)
    assert ran_last_window.expected_by == T0 + timedelta(days=1)
    late = _at(1440, 2, 30)
    assert late.expected_by == T0 and late.last_window_start == T0 - timedelta(days=2)
    assert _at(1440, None, 30).expected_by is None


def test_several_missed_windows_stay_down_even_early_in_a_window() -> None:
    """A 5-minute schedule's grace is a whole window.

    Measured per window, it would never turn down.
    """
    assert [_at(5, offset, 0).status for offset in (2, 3, 4, 100)] == [
        "late",
        "down",
        "down",
        "down",
    ]


def test_explicit_grace_and_last_executed_at_pass_through() -> None:
    at = T0 - timedelta(days=2, minutes=-3)
    result = schedule_status(
        window_minutes=1440,
        last_window_start=T0 - timedelta(days=2),
        now=T0 + timedelta(minutes=30),
        grace_minutes=20,
        last_executed_at=at,
    )
    assert result.status == "down" and result.grace_minutes == 20 and result.last_executed_at == at
    assert _at(1440, 2, 19.99, grace=20).status == "late"


@pytest.mark.parametrize(
    ("last", "now", "action"),
    [
        (None, "new", None),
        (None, "up", "quiet"),
        (None, "late", "quiet"),
        (None, "down", "missed"),
        ("new", "up", "quiet"),
        ("up", "up", None),
        ("up", "late", "quiet"),
        ("late", "down", "missed"),
        ("up", "down", "missed"),
        ("late", "up", "quiet"),
        ("down", "down", None),
        ("down", "late", None),
        ("down", "up", "recovered"),
        ("down", "new", "quiet"),
    ],
)
def test_watch_actions(last: str | None, now: str, action: str | None) -> None:
    assert watch_action(last, now) == action


def test_an_outage_seen_again_is_new_only_when_its_start_moved() -> None:
    assert watch_action("down", "down", new_outage=True) == "missed"
    assert watch_action("down", "down", new_outage=False) is None
    assert down_since(_at(60, 2, 7)) == down_since(_at(60, 2, 59)) == T0 + timedelta(minutes=6)
    assert down_since(_at(60, 3, 0)) == T0 - timedelta(minutes=54)
    assert down_since(_at(60, None, 0)) is None


@pytest.mark.parametrize("window", [5, 60, 1440, 10080])
@pytest.mark.parametrize("last_window_offset", [None, 0, -1, -2, -5])
@pytest.mark.parametrize("minutes_into_current", [0, 0.5, 4, 6, 144, 1007])
def test_next_change_is_the_first_moment_the_status_differs(
    window: int, last_window_offset: int | None, minutes_into_current: float
) -> None:
    """Up to `next_change` the status stays the same; at it, it differs; None: it never does."""
    minutes_into_current = min(minutes_into_current, window - 0.5)
    now = T0 + timedelta(minutes=minutes_into_current)
    last = (
        None if last_window_offset is None else T0 + timedelta(minutes=window * last_window_offset)
    )

    def status_at(moment: datetime) -> str:
        return schedule_status(window_minutes=window, last_window_start=last, now=moment).status

    turn = next_change(
        schedule_status(window_minutes=window, last_window_start=last, now=now), now=now
    )
    probes = [now + timedelta(minutes=m) for m in range(0, 4 * window + 2000, max(1, window // 20))]
    if turn is None:
        assert {status_at(p) for p in probes} == {status_at(now)}
        return
    assert turn > now and status_at(turn) != status_at(now)
    assert status_at(turn - timedelta(microseconds=1)) == status_at(now)
    assert {status_at(p) for p in probes if p < turn} == {status_at(now)}


def test_a_disabled_status_has_no_next_change_by_time() -> None:
    """Its episode ends with a policy change, a write the watchdog reads anyway."""
    computed = schedule_status(
        window_minutes=60,
        last_window_start=T0,
        now=T0 + timedelta(minutes=10),
        policy_off=True,
        last_gated_at=T0 + timedelta(minutes=5),
    )
    assert computed.status == "disabled"
    assert next_change(computed, now=T0 + timedelta(minutes=10)) is None
