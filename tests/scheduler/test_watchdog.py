"""Schedule status over HTTP, and the watchdog's alerts.

Once per outage, cooldown, escalation, recovery.
docs/reference/scheduler.md#schedule-status
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from driftwarden.db.engine import make_session_factory
from driftwarden.notifications import formats
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.patterns.models import IssuePattern
from driftwarden.scheduler import watchdog, watchlist
from driftwarden.scheduler.models import NotifyEvent, ScheduleWatchState
from tests.scheduler.conftest import PREFIX, ok_data, post, set_policy
from tests.support import ON_POSTGRES, make_tenant

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _rows(engine: Engine, model, *where) -> list:  # type: ignore[no-untyped-def]
    with make_session_factory(engine)() as session:
        return list(session.scalars(select(model).where(*where)))


def _events(engine: Engine) -> list[tuple[str, str]]:
    return [
        (e.event_type, e.outcome)
        for e in sorted(_rows(engine, NotifyEvent), key=lambda e: e.created_at)
    ]


def _received(receiver) -> list[str]:  # type: ignore[no-untyped-def]
    return [json.loads(r.body)["type"] for r in receiver.received]


def _tick(session_factory, settings, clock, tracker=None) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    report = watchdog.tick(session_factory, settings=settings, clock=clock, tracker=tracker)
    return [(a.event_type.rsplit("_", 1)[-1], a.outcome) for a in report.alerts]


def _status(client: TestClient, tenant, name: str = "hourly") -> dict:  # type: ignore[no-untyped-def]
    data = ok_data(client.get(f"{PREFIX}/drift/schedule-status", headers=tenant.headers))
    return next(item for item in data["items"] if item["schedule_name"] == name)


@pytest.fixture
def hourly(client: TestClient, admin):  # type: ignore[no-untyped-def]
    """An enabled hourly schedule with alerts on, long cooldown."""
    return set_policy(
        client,
        admin,
        enabled=True,
        alert_enabled=True,
        schedule_name="hourly",
        schedule_window_minutes=60,
        alert_cooldown_minutes=600,
    )


def _run(client: TestClient, tenant) -> dict:  # type: ignore[no-untyped-def]
    return ok_data(post(client, tenant, "/drift/trigger", {}))


def _go_down(client: TestClient, admin, clock) -> None:  # type: ignore[no-untyped-def]
    """Run at the current hour, then skip the next one until its grace (6 min) is over."""
    assert _run(client, admin)["executed"] is True
    clock.advance(hours=2, minutes=6)


def test_new_up_late_down_then_recovered_each_alert_once(
    client: TestClient,
    admin,
    hourly,
    engine: Engine,
    session_factory,
    watch_tracker,
    settings,
    clock,
    receiver,
) -> None:
    assert (
        _tick(session_factory, settings, clock, watch_tracker) == []
        and _status(client, admin)["status"] == "new"
    )
    assert _run(client, admin)["executed"] is True
    assert (
        _tick(session_factory, settings, clock, watch_tracker) == []
        and _status(client, admin)["status"] == "up"
    )
    clock.set(NOON.replace(hour=14))
    assert _tick(session_factory, settings, clock, watch_tracker) == []
    late = _status(client, admin)
    assert (late["status"], late["watchdog_status"], late["missed_windows"]) == ("late", "late", 1)
    assert late["expected_by"] == "2026-11-25T14:00:00Z" and late["grace_minutes"] == 6
    clock.set(NOON.replace(hour=14, minute=6))
    assert _tick(session_factory, settings, clock, watch_tracker) == [("missed", "sent")]
    assert _tick(session_factory, settings, clock, watch_tracker) == []
    down = _status(client, admin)
    assert (down["status"], down["watchdog_status"], down["down_since"]) == (
        "down",
        "down",
        "2026-11-25T14:06:00Z",
    )
    assert (
        down["missed_notified_at"] == "2026-11-25T14:06:00Z"
        and down["last_executed_at"] == "2026-11-25T12:00:00Z"
    )
    assert _received(receiver) == ["contract_drift.schedule_missed"]
    _assert_helpful_missed_message(json.loads(receiver.received[0].body), clock.now())
    clock.set(NOON.replace(hour=14, minute=30))
    assert _run(client, admin)["executed"] is True
    assert _tick(session_factory, settings, clock, watch_tracker) == [("recovered", "sent")]
    assert _tick(session_factory, settings, clock, watch_tracker) == []
    assert _received(receiver) == [
        "contract_drift.schedule_missed",
        "contract_drift.schedule_recovered",
    ]
    assert _events(engine) == [
        ("contract_drift.schedule_missed", "sent"),
        ("contract_drift.schedule_recovered", "sent"),
    ]
    recovered = _status(client, admin)
    assert recovered["status"] == "up" and recovered["down_since"] is None
    assert recovered["recovered_notified_at"] == "2026-11-25T14:30:00Z"


def _assert_helpful_missed_message(body: dict, now: datetime) -> None:
    data = body["data"]
    assert body["type"] == "contract_drift.schedule_missed" and data["status"] == "down"
    assert (data["schedule_name"], data["missed_windows"], data["reasons"]) == (
        "hourly",
        1,
        ["schedule_missed"],
    )
    assert (
        data["last_executed_at"] == "2026-11-25T12:00:00Z"
        and data["summary"]["executed_count"] == 1
    )
    slack = formats.slack_message(body["type"], data, now)
    assert "1 window(s) missed" in slack["text"] and "2026-11-25T12:00:00Z" in slack["text"]
    assert "schedule-status" in json.dumps(slack["blocks"]) and "worker --schedule" in json.dumps(
        slack["blocks"]
    )


def test_cooldown_suppresses_a_second_outage_and_its_recovery(
    client: TestClient,
    admin,
    hourly,
    engine: Engine,
    session_factory,
    watch_tracker,
    settings,
    clock,
    receiver,
) -> None:
    _go_down(client, admin, clock)
    assert _tick(session_factory, settings, clock, watch_tracker) == [("missed", "sent")]
    assert _run(client, admin)["executed"] is True
    assert _tick(session_factory, settings, clock, watch_tracker) == [("recovered", "sent")]
    clock.advance(
        hours=2, minutes=6
    )  # 16:12: the 15:00 window was missed, 6 minutes of grace are over
    assert _tick(session_factory, settings, clock, watch_tracker) == [("missed", "suppressed")]
    assert _tick(session_factory, settings, clock, watch_tracker) == []
    assert _run(client, admin)["executed"] is True
    assert _tick(session_factory, settings, clock, watch_tracker) == [("recovered", "skipped")]
    assert _received(receiver) == [
        "contract_drift.schedule_missed",
        "contract_drift.schedule_recovered",
    ]
    set_policy(client, admin, alert_cooldown_minutes=60)
    clock.advance(hours=2, minutes=6)
    assert _tick(session_factory, settings, clock, watch_tracker) == [("missed", "sent")]
    assert [e[1] for e in _events(engine)] == ["sent", "sent", "suppressed", "skipped", "sent"]


def test_an_outage_after_an_unseen_recovery_is_a_new_outage(
    client: TestClient, admin, hourly, session_factory, watch_tracker, settings, clock, receiver
) -> None:
    """The worker was away while the schedule recovered and stopped again.

    The new outage still alerts.
    """
    set_policy(client, admin, alert_cooldown_minutes=0)
    _go_down(client, admin, clock)
    assert _tick(session_factory, settings, clock, watch_tracker) == [("missed", "sent")]
    _go_down(client, admin, clock)
    assert _tick(session_factory, settings, clock, watch_tracker) == [("missed", "sent")]
    assert _tick(session_factory, settings, clock, watch_tracker) == []
    assert _received(receiver) == ["contract_drift.schedule_missed"] * 2


def test_failed_delivery_escalates_and_recovery_still_follows(
    client: TestClient,
    admin,
    hourly,
    engine: Engine,
    session_factory,
    watch_tracker,
    settings,
    clock,
    receiver,
) -> None:
    receiver.default = (500, {}, 0.0)
    _go_down(client, admin, clock)
    [alert] = watchdog.tick(
        session_factory, settings=settings, clock=clock, tracker=watch_tracker
    ).alerts
    assert alert.outcome == "failed" and alert.escalation is not None and alert.escalation.created
    [pattern] = _rows(engine, IssuePattern)
    assert (pattern.primary_tag, pattern.priority, pattern.agent_id) == (
        "contract_drift_alert_delivery",
        "high",
        None,
    )
    assert pattern.dedupe_key == f"contract_drift_alert_delivery:{admin.org_id}:hourly"
    assert pattern.evidence["event_type"] == "contract_drift.schedule_missed"
    assert (
        pattern.evidence["reasons"] == ["schedule_missed"]
        and pattern.evidence["status_code"] == 500
    )
    [queued] = _rows(engine, NotificationOutbox)
    assert queued.status == "pending" and queued.event_type == "contract_drift.schedule_missed"
    assert _tick(session_factory, settings, clock, watch_tracker) == []
    receiver.default = (200, {}, 0.0)
    _run(client, admin)
    assert _tick(session_factory, settings, clock, watch_tracker) == [("recovered", "sent")]
    [event] = [e for e in _rows(engine, NotifyEvent) if e.outcome == "failed"]
    assert event.escalation_pattern_id == pattern.id and event.error.startswith("HTTP_500")


def test_no_destination_is_a_failed_alert(
    client: TestClient,
    admin,
    hourly,
    engine: Engine,
    session_factory,
    watch_tracker,
    settings,
    clock,
) -> None:
    bare = settings.model_copy(update={"notify_webhook_url": None})
    _go_down(client, admin, clock)
    [alert] = watchdog.tick(
        session_factory, settings=bare, clock=clock, tracker=watch_tracker
    ).alerts
    assert alert.outcome == "failed" and alert.escalation is not None
    [event] = _rows(engine, NotifyEvent)
    assert event.error == "NOTIFY_DESTINATION_MISSING"


def test_alerts_off_records_the_outage_but_sends_nothing(
    client: TestClient,
    admin,
    hourly,
    engine: Engine,
    session_factory,
    watch_tracker,
    settings,
    clock,
    receiver,
) -> None:
    set_policy(client, admin, alert_enabled=False)
    _go_down(client, admin, clock)
    assert _tick(session_factory, settings, clock, watch_tracker) == [("missed", "skipped")]
    _run(client, admin)
    assert _tick(session_factory, settings, clock, watch_tracker) == [("recovered", "skipped")]
    assert receiver.received == [] and _rows(engine, NotificationOutbox) == []


def test_a_run_that_commits_long_after_it_started_is_still_seen_to_recover(
    client: TestClient, admin, hourly, session_factory, settings, clock, receiver
) -> None:
    """A trigger's `started_at` is its request's start; its promotion may commit minutes later,
    after a tick that has already moved past that moment."""
    tracker = watchlist.WatchTracker(full_every=timedelta.max)
    _go_down(client, admin, clock)
    assert _tick(session_factory, settings, clock, tracker) == [("missed", "sent")]
    clock.advance(minutes=-10)  # the run started 10 minutes before that tick, commits after it
    assert _run(client, admin)["executed"] is True
    clock.advance(minutes=11)
    assert _tick(session_factory, settings, clock, tracker) == [("recovered", "sent")]


def test_a_workers_full_tick_still_reads_what_no_timestamp_shows(
    client: TestClient, admin, hourly, engine: Engine, session_factory, settings, clock, receiver
) -> None:
    """A watch row written by hand (here: its next check lost) is missed by the tracked ticks
    and found by the next full one."""
    tracker = watchlist.WatchTracker(full_every=timedelta(hours=3))
    assert _run(client, admin)["executed"] is True
    assert _tick(session_factory, settings, clock, tracker) == []  # the first tick is full
    clock.advance(minutes=2)
    assert _tick(session_factory, settings, clock, tracker) == []  # the policy's write is past
    with engine.begin() as conn:
        conn.execute(update(ScheduleWatchState).values(next_check_at=None))
    clock.advance(hours=2, minutes=5)
    assert _tick(session_factory, settings, clock, tracker) == []  # tracked: not due, so not read
    clock.advance(minutes=54)
    assert _tick(session_factory, settings, clock, tracker) == [("missed", "sent")]  # full


def test_disabled_policy_is_not_watched_and_starts_afresh(
    client: TestClient,
    admin,
    hourly,
    engine: Engine,
    session_factory,
    watch_tracker,
    settings,
    clock,
    receiver,
) -> None:
    _go_down(client, admin, clock)
    assert _tick(session_factory, settings, clock, watch_tracker) == [("missed", "sent")]
    set_policy(client, admin, enabled=False)
    assert (
        watchdog.tick(
            session_factory, settings=settings, clock=clock, tracker=watch_tracker
        ).checked
        == 0
    )
    assert _rows(engine, ScheduleWatchState) == [] and _status(client, admin)["watched"] is False
    set_policy(client, admin, enabled=True, alert_cooldown_minutes=0)
    assert _tick(session_factory, settings, clock, watch_tracker) == [("missed", "sent")]


def test_an_alert_that_cannot_be_queued_leaves_the_change_for_the_next_tick(
    client: TestClient,
    admin,
    hourly,
    engine: Engine,
    session_factory,
    watch_tracker,
    settings,
    clock,
    receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The claim and the outbox rows commit together: no claimed outage without its message."""
    _go_down(client, admin, clock)

    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(watchdog.outbox, "enqueue", broken)
    report = watchdog.tick(session_factory, settings=settings, clock=clock, tracker=watch_tracker)
    assert (report.errors, report.alerts) == (1, [])
    [state] = _rows(engine, ScheduleWatchState)
    assert state.last_status == "new" and _rows(engine, NotifyEvent) == []
    monkeypatch.undo()
    assert _tick(session_factory, settings, clock, watch_tracker) == [("missed", "sent")]


def test_two_watchdogs_that_read_the_same_state_alert_once(
    client: TestClient, admin, hourly, engine: Engine, session_factory, settings, clock, receiver
) -> None:
    """Both read `late`; only the first conditional UPDATE from `late` to `down` matches."""
    _go_down(client, admin, clock)
    clock.advance(minutes=-1)
    watchdog.tick(session_factory, settings=settings, clock=clock)
    clock.advance(minutes=1)
    with session_factory() as session:
        first = watchdog.watched_schedules(session, now=clock.now())
        second = watchdog.watched_schedules(session, now=clock.now())
    assert first[0].last_status == second[0].last_status == "late" and first[0].action == "missed"
    assert watchdog._alert(session_factory, first[0], settings=settings, clock=clock) is not None
    assert watchdog._alert(session_factory, second[0], settings=settings, clock=clock) is None
    assert (
        _received(receiver) == ["contract_drift.schedule_missed"]
        and len(_rows(engine, NotifyEvent)) == 1
    )


@pytest.mark.integration
@pytest.mark.skipif(not ON_POSTGRES, reason="needs RUN_DB_INTEGRATION=1")
def test_racing_watchdogs_on_postgres_send_each_alert_once(
    client: TestClient, admin, hourly, engine: Engine, session_factory, settings, clock, receiver
) -> None:
    _go_down(client, admin, clock)
    for expected in ("contract_drift.schedule_missed", "contract_drift.schedule_recovered"):
        barrier = threading.Barrier(4)

        def race(barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            watchdog.tick(session_factory, settings=settings, clock=clock)

        threads = [threading.Thread(target=race) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert _received(receiver)[-1] == expected and _received(receiver).count(expected) == 1
        _run(client, admin)
    assert len(_rows(engine, NotifyEvent)) == 2


def test_schedule_status_endpoint_and_trigger_summary_field(
    client: TestClient, admin, hourly, engine: Engine, clock
) -> None:
    _run(client, admin)
    ok_data(
        post(client, admin, "/drift/trigger", {"schedule_name": "weekly", "window_minutes": 10080})
    )
    clock.advance(
        days=7, hours=18
    )  # Thursday 3 December 06:00: the weekly window of 26 November passed unrun
    data = ok_data(client.get(f"{PREFIX}/drift/schedule-status", headers=admin.headers))
    assert (data["policy_enabled"], data["policy_schedule_name"], data["count"]) == (
        True,
        "hourly",
        2,
    )
    by_name = {item["schedule_name"]: item for item in data["items"]}
    assert (by_name["hourly"]["status"], by_name["hourly"]["watched"]) == ("down", True)
    assert by_name["hourly"]["missed_windows"] == 7 * 24 + 18 - 1
    weekly = by_name["weekly"]
    assert (
        weekly["status"],
        weekly["window_minutes"],
        weekly["watched"],
        weekly["missed_windows"],
    ) == ("late", 10080, False, 1)
    summary = ok_data(client.get(f"{PREFIX}/drift/trigger-summary", headers=admin.headers))
    assert (
        summary["schedule_name"] == "_all"
        and summary["schedule_status"]["schedule_name"] == "hourly"
    )
    assert summary["schedule_status"]["status"] == "down"
    named = ok_data(
        client.get(
            f"{PREFIX}/drift/trigger-summary",
            headers=admin.headers,
            params={"schedule_name": "nightly"},
        )
    )
    assert (named["schedule_status"]["schedule_name"], named["schedule_status"]["status"]) == (
        "nightly",
        "new",
    )
    member = make_tenant(engine, role="member", org_id=admin.org_id)
    assert client.get(f"{PREFIX}/drift/schedule-status", headers=member.headers).status_code == 403
    other = make_tenant(engine, name="No policy")
    data = ok_data(client.get("/api/system/contracts/drift/schedule-status", headers=other.headers))
    assert (data["policy_enabled"], data["policy_schedule_name"], data["count"]) == (
        False,
        "daily",
        1,
    )
    [item] = data["items"]
    assert (item["status"], item["watched"], item["window_minutes"], item["grace_minutes"]) == (
        "new",
        False,
        1440,
        144,
    )
