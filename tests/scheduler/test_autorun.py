"""The built-in scheduler runs each enabled org's window once, however many workers run it.

docs/reference/scheduler.md#built-in-scheduler
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from driftwarden.db.engine import make_session_factory
from driftwarden.patterns import service as patterns_service
from driftwarden.scheduler import flows, windows
from driftwarden.scheduler import service as scheduler_service
from driftwarden.scheduler.models import ScheduleWatchState, TriggerRun
from driftwarden.worker import jobs as worker_jobs
from driftwarden.worker.runner import Worker, WorkerConfig
from tests.scheduler.conftest import seed_drift, set_policy
from tests.support import ON_POSTGRES, make_tenant

NO_DELAY: scheduler_service.Delay = lambda org_id, window: 0.0  # noqa: E731 - a one-line stand-in for the random delay


def _triggers(engine: Engine) -> list[TriggerRun]:
    with make_session_factory(engine)() as session:
        return list(session.scalars(select(TriggerRun).order_by(TriggerRun.started_at)))


def _tick(session_factory, settings, clock, delay=NO_DELAY, tracker=None) -> flows.AutorunReport:  # type: ignore[no-untyped-def]
    return flows.run_due_schedules(
        session_factory, settings=settings, clock=clock, delay=delay, tracker=tracker
    )


@pytest.fixture(params=["untracked", "tracked"])
def tracker(request) -> scheduler_service.DueTracker | None:  # type: ignore[no-untyped-def]
    """The sequential tests run as a bare call does and as the worker's job does (a tracker)."""
    return scheduler_service.DueTracker() if request.param == "tracked" else None


@pytest.fixture
def hourly(client: TestClient, admin, engine: Engine):  # type: ignore[no-untyped-def]
    seed_drift(engine, admin.org_id, breaking=1, warning=0)
    return set_policy(
        client, admin, enabled=True, schedule_name="hourly", schedule_window_minutes=60
    )


def test_each_window_runs_once_with_a_key_from_org_schedule_and_window(
    client: TestClient, admin, hourly, engine: Engine, session_factory, settings, clock, tracker
) -> None:
    set_policy(client, make_tenant(engine, name="Off"), enabled=False)
    set_policy(
        client, make_tenant(engine, name="No promotion"), enabled=True, promote_to_patterns=False
    )
    first = _tick(session_factory, settings, clock, tracker=tracker)
    assert (first.due, first.executed) == (1, 1)
    assert _tick(session_factory, settings, clock, tracker=tracker).due == 0
    clock.advance(minutes=59, seconds=59)
    assert _tick(session_factory, settings, clock, tracker=tracker).due == 0
    clock.advance(seconds=1)
    assert _tick(session_factory, settings, clock, tracker=tracker).executed == 1
    runs = _triggers(engine)
    assert [r.outcome for r in runs] == ["executed", "executed"]
    epoch = int((runs[0].window_start - windows.EPOCH).total_seconds())
    assert runs[0].idempotency_key == f"driftwarden-autorun:{admin.org_id}:hourly:60:{epoch}"
    assert (
        runs[0].request_id.startswith("autorun-")
        and runs[0].promote_result["created_pattern_count"] == 1
    )
    assert runs[1].promote_result["reused_pattern_count"] == 1 and {r.org_id for r in runs} == {
        admin.org_id
    }


def test_random_delay_is_small_and_stable_within_a_window() -> None:
    org_id = uuid.uuid4()
    five, daily = (windows.window_for(windows.EPOCH + timedelta(days=20000), m) for m in (5, 1440))
    delay = scheduler_service.random_delay(seed="worker-a")
    assert delay(org_id, daily) == scheduler_service.random_delay(seed="worker-a")(org_id, daily)
    assert 0 <= delay(org_id, daily) <= 60 and 0 <= delay(org_id, five) <= 15
    others = {scheduler_service.random_delay(seed=f"worker-{n}")(org_id, daily) for n in range(8)}
    assert len(others) == 8


def test_a_failed_window_is_retried_after_a_pause(
    admin,
    hourly,
    engine: Engine,
    session_factory,
    settings,
    clock,
    monkeypatch: pytest.MonkeyPatch,
    tracker,
) -> None:
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("scan exploded")

    monkeypatch.setattr(patterns_service, "promote_drift", broken)
    assert _tick(session_factory, settings, clock, tracker=tracker).failed == 1
    clock.advance(seconds=179)
    assert _tick(session_factory, settings, clock, tracker=tracker).due == 0
    monkeypatch.undo()
    clock.advance(seconds=1)
    assert _tick(session_factory, settings, clock, tracker=tracker).executed == 1
    assert [r.outcome for r in _triggers(engine)] == ["failed", "executed"]


def test_a_tracker_reads_a_policy_enabled_after_its_first_read(
    client: TestClient, admin, hourly, engine: Engine, session_factory, settings, clock
) -> None:
    tracker = scheduler_service.DueTracker()
    assert _tick(session_factory, settings, clock, tracker=tracker).executed == 1
    late = make_tenant(engine, name="Late")
    seed_drift(engine, late.org_id, breaking=1, warning=0)
    clock.advance(minutes=5)
    set_policy(client, late, enabled=True, schedule_name="hourly", schedule_window_minutes=60)
    assert _tick(session_factory, settings, clock, tracker=tracker).executed == 1
    assert _tick(session_factory, settings, clock, tracker=tracker).due == 0
    assert {r.org_id for r in _triggers(engine)} == {admin.org_id, late.org_id}


def test_two_workers_that_both_saw_the_window_due_execute_it_once(
    admin, hourly, engine: Engine, session_factory, settings, clock
) -> None:
    """Both read the window as due before either ran it: the trigger's window claim decides.

    docs/reference/scheduler.md#trigger
    """
    with session_factory() as session:
        seen = [
            scheduler_service.due_runs(session, now=clock.now(), delay=NO_DELAY) for _ in range(2)
        ]
    reports = [flows.AutorunReport(), flows.AutorunReport()]
    for [run], report in zip(seen, reports, strict=True):
        flows.run_one_due(session_factory, run, settings=settings, clock=clock, report=report)
    assert [(r.executed, r.deduped) for r in reports] == [(1, 0), (0, 1)]
    assert Counter(r.outcome for r in _triggers(engine)) == {"executed": 1, "deduped": 1}


def test_sequential_ticks_of_two_workers_execute_once(
    admin, hourly, engine: Engine, session_factory, settings, clock
) -> None:
    """Each waits its own delay into the window.

    The first to get there runs it, the other finds it done.
    """
    worker_a, worker_b = (lambda org_id, window: 30.0), (lambda org_id, window: 40.0)
    assert _tick(session_factory, settings, clock, delay=worker_a).due == 0
    clock.advance(seconds=30)
    reports = [_tick(session_factory, settings, clock, delay=d) for d in (worker_a, worker_b)]
    clock.advance(seconds=10)
    reports += [_tick(session_factory, settings, clock, delay=d) for d in (worker_b, worker_a)]
    assert [r.executed for r in reports] == [1, 0, 0, 0] and [r.due for r in reports] == [
        1,
        0,
        0,
        0,
    ]
    assert [r.outcome for r in _triggers(engine)] == ["executed"]


@pytest.mark.integration
@pytest.mark.skipif(not ON_POSTGRES, reason="needs RUN_DB_INTEGRATION=1")
def test_racing_autorun_ticks_on_postgres_execute_once(
    admin, hourly, engine: Engine, session_factory, settings, clock
) -> None:
    barrier = threading.Barrier(6)
    reports: list[flows.AutorunReport] = []

    def race() -> None:
        barrier.wait()
        reports.append(_tick(session_factory, settings, clock))

    threads = [threading.Thread(target=race) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(r.executed for r in reports) == 1 and sum(r.errors + r.failed for r in reports) == 0
    outcomes = Counter(r.outcome for r in _triggers(engine))
    assert outcomes["executed"] == 1 and set(outcomes) <= {"executed", "deduped"}


def test_worker_with_schedule_runs_the_watchdog_and_the_schedule(
    admin, hourly, engine: Engine, session_factory, settings, clock
) -> None:
    """The worker's explicit job list: `--schedule` adds the built-in scheduler after the others."""
    plain = worker_jobs.build(session_factory, settings, clock, schedule=False)
    assert [j.name for j in plain] == ["schedule-watchdog", "idempotency-purge", "retention"]
    jobs = worker_jobs.build(session_factory, settings, clock, schedule=True)
    assert [(j.name, j.every_seconds) for j in jobs] == [
        ("schedule-watchdog", 60.0),
        ("idempotency-purge", 300.0),
        ("retention", 600.0),
        ("schedule-autorun", 15.0),
    ]
    clock.advance(minutes=2)  # past any worker's random delay into the window
    Worker(
        session_factory, settings, clock, WorkerConfig(once=True, poll_interval=0.01), periodic=jobs
    ).run()
    assert [r.outcome for r in _triggers(engine)] == ["executed"]


@pytest.mark.skipif(
    not (os.environ.get("RUN_SLOW") == "1" or ON_POSTGRES), reason="real process: RUN_SLOW=1"
)
def test_driftwarden_worker_once_schedule_command(
    client: TestClient, admin, hourly, engine: Engine, database_url: str
) -> None:
    """The real command on the real clock.

    A 5-minute window, started past any worker's delay (15 s).
    """
    set_policy(client, admin, schedule_window_minutes=5)
    into_window = time.time() % 300
    if not 16 <= into_window <= 280:
        time.sleep((316 - into_window) % 300)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "NOTIFY_WEBHOOK_URL": "",
        "LOG_LEVEL": "INFO",
    }
    done = subprocess.run(
        [sys.executable, "-m", "driftwarden.cli", "worker", "--once", "--schedule"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [r.outcome for r in _triggers(engine)] == ["executed"], done.stderr
    assert '"event": "scheduled_run"' in done.stderr and '"event": "worker_stopped"' in done.stderr
    with make_session_factory(engine)() as session:
        assert session.get(ScheduleWatchState, (admin.org_id, "hourly")).last_status == "new"
