"""The trigger under real concurrency.

docs/reference/scheduler.md#trigger

Two uvicorn worker processes, 32 triggers racing for one window.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, func, select

from driftwarden.db.engine import make_session_factory
from driftwarden.patterns.models import IssuePattern
from driftwarden.scheduler.models import TriggerDayCount, TriggerRun
from tests.scheduler.conftest import seed_drift
from tests.scheduler.servers import uvicorn_workers
from tests.support import ON_POSTGRES

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not ON_POSTGRES, reason="needs RUN_DB_INTEGRATION=1"),
]
RACERS = 32


@contextmanager
def _two_workers_with_the_policy_on(
    database_url: str, tenant, tmp_path: Path
) -> Iterator[httpx.Client]:  # type: ignore[no-untyped-def]
    """A client of two uvicorn worker processes, as `tenant`, whose drift policy is enabled."""
    with (
        uvicorn_workers(database_url, workers=2, log=tmp_path / "uvicorn.log") as base_url,
        httpx.Client(base_url=base_url, headers=tenant.headers, timeout=60) as http,
    ):
        policy = http.post("/api/system/contracts/drift-policy", json={"enabled": True})
        assert policy.status_code == 200, policy.text
        yield http


def test_32_racing_triggers_on_two_workers_execute_the_window_once(
    database_url: str, engine: Engine, admin, tmp_path: Path
) -> None:
    seed_drift(engine, admin.org_id, breaking=3)
    with _two_workers_with_the_policy_on(database_url, admin, tmp_path) as http:

        def fire(_: int) -> httpx.Response:
            return http.post(
                "/api/system/contracts/drift/trigger",
                json={},
                headers={"Idempotency-Key": f"racer-{uuid.uuid4().hex}"},
            )

        with ThreadPoolExecutor(max_workers=RACERS) as pool:
            responses = list(pool.map(fire, range(RACERS)))
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {200: RACERS}, [r.text for r in responses if r.status_code != 200][:3]
    data = [r.json()["data"] for r in responses]
    outcomes = Counter(d["outcome"] for d in data)
    assert outcomes == {"executed": 1, "deduped": RACERS - 1}
    [winner] = [d["trigger_id"] for d in data if d["executed"]]
    assert {d["deduped_from_trigger_id"] for d in data if d["deduped"]} == {winner}
    with make_session_factory(engine)() as session:
        executed = session.scalar(
            select(func.count()).select_from(TriggerRun).where(TriggerRun.outcome == "executed")
        )
        patterns = session.scalar(select(func.count()).select_from(IssuePattern))
    assert executed == 1 and patterns == 3


def test_racing_schedule_runs_are_each_counted_once_on_their_day(
    database_url: str, engine: Engine, admin, tmp_path: Path
) -> None:
    """The day counts are kept by the database as triggers are written: schedule runs and dry runs
    racing on two workers (the same count rows, upserted concurrently) are each counted once."""
    seed_drift(engine, admin.org_id, breaking=2)
    real, dry = 24, 8
    with _two_workers_with_the_policy_on(database_url, admin, tmp_path) as http:

        def fire(n: int) -> httpx.Response:
            return http.post(
                "/api/system/contracts/drift/schedule-run",
                json={"org_id": str(admin.org_id), "dry_run": n < dry},
                headers={"Idempotency-Key": f"counted-{uuid.uuid4().hex}"},
            )

        with ThreadPoolExecutor(max_workers=real + dry) as pool:
            responses = list(pool.map(fire, range(real + dry)))
        statuses = Counter(r.status_code for r in responses)
        assert statuses == {200: real + dry}, [r.text for r in responses if r.status_code != 200]
        summary = http.get(
            "/api/system/contracts/drift/trigger-summary",
            params={"org_id": str(admin.org_id), "schedule_name": "daily", "limit": 1},
        ).json()["data"]
    with make_session_factory(engine)() as session:
        counted = session.execute(
            select(
                TriggerDayCount.outcome, TriggerDayCount.dry_run, TriggerDayCount.trigger_count
            ).where(TriggerDayCount.org_id == admin.org_id)
        ).all()
    totals: Counter[tuple[str, bool]] = Counter()
    for outcome, dry_run, count in counted:  # two days if the race straddles a UTC midnight
        totals[(outcome, dry_run)] += count
    assert totals == {("executed", False): 1, ("deduped", False): real - 1, ("executed", True): dry}
    assert (summary["trigger_count"], summary["dry_run_count"]) == (real, dry)
