"""One missed-schedule alert per outage when watchdogs race in separate processes (Postgres).

(docs/reference/scheduler.md, one alert per anomaly.) Four processes run one watchdog tick each at
the same moment, with the same frozen time, five outages in a row; the receiver must get exactly
one `schedule_missed` per outage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.scheduler.conftest import PREFIX, ok_data, post, set_policy
from tests.support import ON_POSTGRES, make_tenant

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not ON_POSTGRES, reason="needs RUN_DB_INTEGRATION=1"),
]
PROCESSES = 4
OUTAGES = 5
MISSED = "contract_drift.schedule_missed"

# One tick at `start` (a time.time() value), with the clock frozen at `at`.
TICK = """
import sys, time
from datetime import datetime
import driftwarden.db.models  # every table, for the ORM's flush order
from driftwarden.clock import FrozenClock
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.scheduler import watchdog
from driftwarden.settings import Settings
settings = Settings()
factory = make_session_factory(make_engine(settings))
clock = FrozenClock(datetime.fromisoformat(sys.argv[1]))
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
report = watchdog.tick(factory, settings=settings, clock=clock)
print(len(report.alerts), report.errors)
"""


def _tick_in_processes(settings, clock) -> list[str]:  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "DATABASE_URL": settings.db_url,
        "NOTIFY_WEBHOOK_URL": settings.webhook_url,
        "NOTIFY_WEBHOOK_TIMEOUT_SECONDS": "5",
    }
    start = str(time.time() + 2.0)  # every process has imported and connected by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", TICK, clock.now().isoformat(), start],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    outputs = [p.communicate(timeout=60) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err[-800:] for _, err in outputs]
    return [out.strip() for out, _ in outputs]


def test_watchdogs_in_four_processes_send_each_outage_once(
    client: TestClient, engine: Engine, settings, clock, receiver
) -> None:
    for outage in range(OUTAGES):
        tenant = make_tenant(engine, role="admin")
        set_policy(
            client,
            tenant,
            enabled=True,
            alert_enabled=True,
            schedule_name=f"hourly-{outage}",
            schedule_window_minutes=60,
            alert_cooldown_minutes=600,
        )
        assert ok_data(post(client, tenant, "/drift/trigger", {}))["executed"] is True
        clock.advance(hours=2, minutes=6)  # the next window was missed and its grace is over
        status = ok_data(client.get(f"{PREFIX}/drift/schedule-status", headers=tenant.headers))
        assert status["items"][0]["status"] == "down"
        before = len(receiver.received)
        outputs = _tick_in_processes(settings, clock)
        missed = [json.loads(r.body) for r in receiver.received[before:]]
        missed = [
            m
            for m in missed
            if m["type"] == MISSED and m["data"]["schedule_name"] == f"hourly-{outage}"
        ]
        assert len(missed) == 1, (outage, outputs, len(missed))
