"""A schedule still triggered while its policy is off: status `disabled`, and one alert per episode.

(docs/reference/scheduler.md, schedule status and watchdog.)
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, text, update

from driftwarden.db.engine import make_session_factory
from driftwarden.notifications import formats
from driftwarden.scheduler import watchdog, watchlist
from driftwarden.scheduler.models import NotifyEvent, ScheduleWatchState
from driftwarden.scheduler.status import schedule_status, watch_action
from tests.scheduler.conftest import PREFIX, ok_data, post, set_policy
from tests.support import ON_POSTGRES

EVENT = "contract_drift.schedule_disabled_triggered"
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _status_at(minutes_since_refused: float, *, policy_off: bool = True) -> str:
    """An hourly schedule (grace 6 min) that ran at 09:00 and had a trigger refused at 10:00."""
    return schedule_status(
        window_minutes=60,
        last_window_start=T0 - timedelta(hours=1),
        now=T0 + timedelta(minutes=minutes_since_refused),
        policy_off=policy_off,
        last_gated_at=T0,
    ).status


def test_disabled_while_a_refused_trigger_is_within_the_last_window_and_grace() -> None:
    assert [_status_at(m) for m in (0, 65.99, 66)] == ["disabled"] * 3  # 60 + 6 minutes
    assert _status_at(66.01) == "down"  # nobody calls any more: the usual rules
    assert _status_at(0, policy_off=False) == "up"  # the policy is on again: refusals are history
    never_ran = schedule_status(
        window_minutes=60,
        last_window_start=None,
        now=T0,
        policy_off=True,
        last_gated_at=T0 - timedelta(minutes=30),
    )
    assert (never_ran.status, never_ran.last_gated_at) == ("disabled", T0 - timedelta(minutes=30))


@pytest.mark.parametrize(
    ("last", "now", "off", "action"),
    [
        (None, "disabled", True, "disabled"),
        ("up", "disabled", True, "disabled"),
        ("down", "disabled", True, "disabled"),
        ("disabled", "disabled", True, None),
        ("disabled", "down", True, None),
        ("disabled", "new", False, "quiet"),
        ("disabled", "up", False, "quiet"),
        ("disabled", "down", False, "missed"),
    ],
)
def test_watch_actions_of_a_disabled_episode(
    last: str | None, now: str, off: bool, action: str | None
) -> None:
    assert watch_action(last, now, policy_off=off) == action


@pytest.fixture
def switched_off(client: TestClient, admin):  # type: ignore[no-untyped-def]
    """An hourly schedule whose policy is off, with alerts on."""
    return set_policy(
        client,
        admin,
        enabled=False,
        alert_enabled=True,
        schedule_name="hourly",
        schedule_window_minutes=60,
    )


def _trigger(client: TestClient, tenant, **body) -> str:  # type: ignore[no-untyped-def]
    return ok_data(post(client, tenant, "/drift/trigger", body))["outcome"]


def _hourly(client: TestClient, tenant) -> dict:  # type: ignore[no-untyped-def]
    data = ok_data(client.get(f"{PREFIX}/drift/schedule-status", headers=tenant.headers))
    return next(item for item in data["items"] if item["schedule_name"] == "hourly")


def _tick(session_factory, settings, clock, tracker=None):  # type: ignore[no-untyped-def]
    report = watchdog.tick(session_factory, settings=settings, clock=clock, tracker=tracker)
    return [(a.event_type, a.outcome) for a in report.alerts]


def _received(receiver) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(r.body) for r in receiver.received]


def _alerts_of(receiver, org_id) -> set[str]:  # type: ignore[no-untyped-def]
    """The distinct alerts (webhook-ids) about this org's schedule: a message delivered again is
    the same alert, and one left over from another test on the shared receiver is not this one."""
    return {
        r.headers["webhook-id"]
        for r in receiver.received
        if (m := json.loads(r.body))["type"] == EVENT and m["data"]["org_id"] == str(org_id)
    }


def test_status_is_disabled_only_for_real_recent_refused_triggers(
    client: TestClient, admin, switched_off, clock
) -> None:
    assert _trigger(client, admin, dry_run=True) == "policy_disabled"
    assert _hourly(client, admin)["status"] == "new"  # a dry run is nobody's schedule
    assert _trigger(client, admin) == "policy_disabled"
    assert _hourly(client, admin)["status"] == "disabled"
    summary = ok_data(
        client.get(
            f"{PREFIX}/drift/trigger-summary",
            headers=admin.headers,
            params={"schedule_name": "hourly"},
        )
    )
    assert summary["schedule_status"]["status"] == "disabled"
    clock.advance(minutes=66, seconds=1)
    assert _hourly(client, admin)["status"] == "new"


def test_watchdog_alerts_once_per_episode_and_again_after_a_re_enable(
    client: TestClient,
    admin,
    switched_off,
    engine: Engine,
    session_factory,
    watch_tracker,
    settings,
    clock,
    receiver,
) -> None:
    assert (
        _tick(session_factory, settings, clock, watch_tracker) == []
    )  # off and never triggered: not watched
    _trigger(client, admin)
    assert _tick(session_factory, settings, clock, watch_tracker) == [(EVENT, "sent")]
    clock.advance(minutes=30)
    _trigger(client, admin)
    assert _tick(session_factory, settings, clock, watch_tracker) == []  # the same episode
    clock.advance(hours=2)  # the caller stopped, then comes back: the policy never came on
    _trigger(client, admin)
    assert _tick(session_factory, settings, clock, watch_tracker) == []
    set_policy(client, admin, enabled=True)
    assert (
        _tick(session_factory, settings, clock, watch_tracker) == []
    )  # seen on again: the episode is over
    set_policy(client, admin, enabled=False)
    _trigger(client, admin)
    assert _tick(session_factory, settings, clock, watch_tracker) == [(EVENT, "sent")]
    sent = [m for m in _received(receiver) if m["type"] == EVENT]
    assert len(sent) == 2 and len(_received(receiver)) == 2
    data = sent[0]["data"]
    assert (data["org_id"], data["schedule_name"]) == (str(admin.org_id), "hourly")
    assert data["status"] == "disabled"
    assert data["policy_enabled"] is False and data["reasons"] == ["schedule_disabled_triggered"]
    with make_session_factory(engine)() as session:
        events = list(session.scalars(select(NotifyEvent.event_type)))
    assert events == [EVENT, EVENT]


def test_promotion_off_counts_as_disabled(
    client: TestClient, admin, session_factory, watch_tracker, settings, clock, receiver
) -> None:
    set_policy(
        client,
        admin,
        enabled=True,
        promote_to_patterns=False,
        alert_enabled=True,
        schedule_name="hourly",
        schedule_window_minutes=60,
    )
    assert _trigger(client, admin) == "promotion_disabled"
    assert _hourly(client, admin)["status"] == "disabled"
    assert _tick(session_factory, settings, clock, watch_tracker) == [(EVENT, "sent")]
    slack = formats.slack_message(EVENT, _received(receiver)[0]["data"], clock.now())
    assert "still being triggered" in slack["text"] and "not to promote patterns" in slack["text"]


def test_two_watchdogs_that_read_the_same_state_send_it_once(
    client: TestClient, admin, switched_off, session_factory, settings, clock, receiver
) -> None:
    """Both read `new`; only the first conditional UPDATE from `new` to `disabled` matches."""
    _trigger(client, admin)
    with session_factory() as session:
        watchlist.insert_missing(
            session, watchdog.watched_schedules(session, now=clock.now()), now=clock.now()
        )
        session.commit()
        first = watchdog.watched_schedules(session, now=clock.now())
        second = watchdog.watched_schedules(session, now=clock.now())
    assert first[0].last_status == second[0].last_status == "new"
    assert first[0].action == second[0].action == "disabled"
    assert watchdog._alert(session_factory, first[0], settings=settings, clock=clock) is not None
    assert watchdog._alert(session_factory, second[0], settings=settings, clock=clock) is None
    assert [m["type"] for m in _received(receiver)] == [EVENT]


@pytest.mark.integration
@pytest.mark.skipif(not ON_POSTGRES, reason="needs RUN_DB_INTEGRATION=1")
def test_racing_watchdogs_on_postgres_send_it_once(
    client: TestClient, admin, switched_off, session_factory, settings, clock, receiver
) -> None:
    for episode in range(3):
        _trigger(client, admin)
        barrier = threading.Barrier(4)

        def race(barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            watchdog.tick(session_factory, settings=settings, clock=clock)

        threads = [threading.Thread(target=race) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not any(thread.is_alive() for thread in threads)
        assert len(_alerts_of(receiver, admin.org_id)) == episode + 1
        set_policy(client, admin, enabled=True)
        watchdog.tick(session_factory, settings=settings, clock=clock)
        set_policy(client, admin, enabled=False)


@pytest.mark.integration
@pytest.mark.skipif(not ON_POSTGRES, reason="needs RUN_DB_INTEGRATION=1")
def test_a_tick_forgetting_schedules_keeps_the_episode_another_worker_is_claiming(
    client: TestClient, admin, switched_off, session_factory, engine: Engine, clock
) -> None:
    """A tick's clean-up reads the row as `new` (policy off: not watched yet) while another
    worker's claim turns it `disabled`. It waits for that claim, and must then keep the row:
    deleting it would start the episode again, and a second worker would alert it again."""
    _trigger(client, admin)
    key = (admin.org_id, "hourly")
    with session_factory() as session:
        watched = watchdog.watched_schedules(session, now=clock.now(), org_ids=[admin.org_id])
        watchlist.insert_missing(session, watched, now=clock.now())
        session.commit()
    with session_factory() as claimer:
        claimer.execute(
            update(ScheduleWatchState)
            .where(ScheduleWatchState.org_id == key[0], ScheduleWatchState.schedule_name == key[1])
            .values(last_status="disabled")
        )  # the claim, not committed yet: it holds the row

        def forget() -> None:
            with session_factory() as session:
                watchlist.forget_unwatched(session, org_ids=[admin.org_id])
                session.commit()

        thread = threading.Thread(target=forget)
        thread.start()
        _wait_for_a_lock_wait(engine)
        claimer.commit()
    thread.join(timeout=10)
    assert not thread.is_alive()
    with session_factory() as session:
        row = session.get(ScheduleWatchState, key)
        assert row is not None and row.last_status == "disabled"


def _wait_for_a_lock_wait(engine: Engine, timeout: float = 10.0) -> None:
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    deadline = time.monotonic() + timeout
    with engine.connect() as connection:
        while connection.execute(waiting).scalar() == 0:
            assert time.monotonic() < deadline, "the clean-up never waited for the claim"
            time.sleep(0.02)
            connection.rollback()
