"""The trigger summary over several UTC days: its first and last day counted trigger by trigger,
the whole days between from the day counts the database keeps as triggers are written.

docs/reference/scheduler.md#trigger-summary
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, select, update

from driftwarden.db.engine import make_session_factory
from driftwarden.scheduler.models import TriggerDayCount, TriggerRun
from tests.scheduler.conftest import PREFIX, ok_data, post, seed_drift, set_policy

NOW = datetime(2026, 11, 23, 10, 30, tzinfo=UTC)  # a 3-day window starts at 11-20 10:30


def _at(day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, micro, tzinfo=UTC)


def _summary(client: TestClient, tenant, window_days: int) -> dict:  # type: ignore[no-untyped-def]
    response = client.get(
        f"{PREFIX}/drift/trigger-summary",
        headers=tenant.headers,
        params={"org_id": str(tenant.org_id), "schedule_name": "daily", "window_days": window_days},
    )
    return ok_data(response)


def _counts(data: dict) -> dict:
    keys = ("trigger_count", "executed_count", "deduped_count", "failed_count")
    keys += ("policy_disabled_count", "promotion_disabled_count", "dry_run_count")
    return {k: data[k] for k in keys}


@pytest.fixture
def history(client: TestClient, admin, engine: Engine, clock) -> dict[str, str]:
    """A daily schedule's triggers around a 3-day window ending at NOW; the response of each."""
    seed_drift(engine, admin.org_id)
    set_policy(client, admin, enabled=True)
    plan = {
        "before_since": (_at(20, 10), {}),  # executes 11-20's window, 30 minutes too early
        "at_since": (_at(20, 10, 30), {}),  # exactly the window's start: counted
        "first_day": (_at(20, 11), {}),
        "midnight": (_at(21, 0), {}),  # the first instant of 11-21 executes its window
        "last_instant": (_at(21, 23, 59, 59, 999_999), {}),
        "dry": (_at(22, 8), {"dry_run": True}),
        "day_two": (_at(22, 9), {}),
        "today": (_at(23, 9), {}),
        "now": (NOW, {}),
    }
    outcomes = {}
    for name, (at, body) in plan.items():
        clock.set(at)
        outcomes[name] = ok_data(post(client, admin, "/drift/trigger", body))["outcome"]
    clock.set(_at(22, 12))
    set_policy(client, admin, enabled=False)
    outcomes["refused"] = ok_data(post(client, admin, "/drift/trigger", {}))["outcome"]
    set_policy(client, admin, enabled=True)
    clock.set(NOW)
    return outcomes


def test_the_history_is_what_the_window_is_counted_over(history: dict[str, str]) -> None:
    assert history == {
        "before_since": "executed",
        "at_since": "deduped",
        "first_day": "deduped",
        "midnight": "executed",
        "last_instant": "deduped",
        "dry": "executed",
        "day_two": "executed",
        "today": "executed",
        "now": "deduped",
        "refused": "policy_disabled",
    }


def test_a_summary_over_whole_days_counts_each_trigger_of_its_window_once(
    client: TestClient, admin, history
) -> None:
    data = _summary(client, admin, 3)
    assert _counts(data) == {
        "trigger_count": 8,  # all but the one 30 minutes before the window, and the dry run
        "executed_count": 3,
        "deduped_count": 4,
        "failed_count": 0,
        "policy_disabled_count": 1,
        "promotion_disabled_count": 0,
        "dry_run_count": 1,
    }
    assert data["last_triggered_at"] == "2026-11-23T10:30:00Z"
    assert data["last_executed_at"] == "2026-11-23T09:00:00Z"
    assert data["execution_rate"] == 0.375 and data["dedupe_hit_rate"] == 0.5


@pytest.mark.parametrize(
    ("window_days", "expected"),
    [
        (1, {"trigger_count": 3, "executed_count": 1, "deduped_count": 1, "dry_run_count": 0}),
        (2, {"trigger_count": 5, "executed_count": 2, "deduped_count": 2, "dry_run_count": 1}),
        (30, {"trigger_count": 9, "executed_count": 4, "deduped_count": 4, "dry_run_count": 1}),
    ],
)
def test_every_window_length_splits_its_days_the_same_way(
    client: TestClient, admin, history, window_days: int, expected: dict
) -> None:
    data = _summary(client, admin, window_days)
    assert {k: data[k] for k in expected} == expected


def test_the_last_times_come_from_the_day_counts_when_today_has_no_trigger(
    client: TestClient, admin, history, clock
) -> None:
    clock.set(datetime(2026, 11, 24, 1, 0, tzinfo=UTC))  # nothing yet on 11-24
    data = _summary(client, admin, 3)
    assert data["trigger_count"] == 5  # from 11-21 01:00 on: 11-21's 00:00 trigger is out
    assert data["last_triggered_at"] == "2026-11-23T10:30:00Z"
    assert data["last_executed_at"] == "2026-11-23T09:00:00Z"


def test_the_database_counts_each_settled_trigger_on_its_utc_day(
    engine: Engine, admin, history
) -> None:
    with make_session_factory(engine)() as session:
        rows = session.execute(
            select(
                TriggerDayCount.day,
                TriggerDayCount.outcome,
                TriggerDayCount.dry_run,
                TriggerDayCount.trigger_count,
                TriggerDayCount.last_started_at,
            )
            .where(TriggerDayCount.org_id == admin.org_id)
            .order_by(TriggerDayCount.day, TriggerDayCount.outcome, TriggerDayCount.dry_run)
        ).all()
    assert [tuple(r) for r in rows] == [
        (date(2026, 11, 20), "deduped", False, 2, _at(20, 11)),
        (date(2026, 11, 20), "executed", False, 1, _at(20, 10)),
        (date(2026, 11, 21), "deduped", False, 1, _at(21, 23, 59, 59, 999_999)),
        (date(2026, 11, 21), "executed", False, 1, _at(21, 0)),
        (date(2026, 11, 22), "executed", False, 1, _at(22, 9)),
        (date(2026, 11, 22), "executed", True, 1, _at(22, 8)),
        (date(2026, 11, 22), "policy_disabled", False, 1, _at(22, 12)),
        (date(2026, 11, 23), "deduped", False, 1, NOW),
        (date(2026, 11, 23), "executed", False, 1, _at(23, 9)),
    ]  # no `running` row: every claim settled


def test_a_trigger_deleted_or_settled_again_leaves_the_counts_of_its_day(
    client: TestClient, admin, engine: Engine, history
) -> None:
    """Writes that bypass the service (an operator's SQL) are counted too: the database keeps
    the day counts."""
    whole_day = TriggerRun.started_at == _at(21, 23, 59, 59, 999_999)
    with make_session_factory(engine)() as session:
        session.execute(update(TriggerRun).where(whole_day).values(outcome="failed"))
        session.execute(delete(TriggerRun).where(TriggerRun.started_at == _at(22, 9)))
        session.commit()
    data = _summary(client, admin, 3)
    assert _counts(data) == {
        "trigger_count": 7,
        "executed_count": 2,
        "deduped_count": 3,
        "failed_count": 1,
        "policy_disabled_count": 1,
        "promotion_disabled_count": 0,
        "dry_run_count": 1,
    }


def test_a_schedule_runs_summary_counts_the_days_as_the_summary_endpoint_does(
    client: TestClient, admin, history
) -> None:
    """The schedule run's notify reads its summary its own way (on Postgres, inside the deduped
    trigger's statement): it must agree, counting the run's own trigger."""
    before = _summary(client, admin, 3)
    body = {"org_id": str(admin.org_id), "summary_window_days": 3}
    run = post(client, admin, "/drift/schedule-run", body)
    data = ok_data(run)
    assert data["trigger"]["outcome"] == "deduped"
    after = _summary(client, admin, 3)
    summary = data["notify"]["summary"]
    assert after["trigger_count"] == before["trigger_count"] + 1
    assert after["deduped_count"] == before["deduped_count"] + 1
    assert summary == {k: v for k, v in after.items() if k in summary}
    assert set(summary) >= {"trigger_count", "last_triggered_at", "dedupe_hit_rate"}
