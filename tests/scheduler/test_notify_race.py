"""One alert per anomaly under real concurrency.

Two uvicorn workers, 32 schedule-runs racing to notify.
(docs/reference/scheduler.md, one alert per anomaly.)
Each run after the first of a window is deduped, so every racer sees the same
execution-rate anomaly with the same fingerprint and wants to send it; the right to send
is claimed in the database, so the receiver gets exactly one alert per repetition.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.scheduler.conftest import seed_drift
from tests.scheduler.servers import uvicorn_workers
from tests.support import ON_POSTGRES, WebhookReceiver

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not ON_POSTGRES, reason="needs RUN_DB_INTEGRATION=1"),
]
RACERS = 32
REPETITIONS = 5
ANOMALY = "contract_drift.trigger_anomaly"


def _race(http: httpx.Client, org_id: uuid.UUID, schedule_name: str) -> list[dict]:
    """One executed run, then RACERS concurrent runs with fresh keys in the same window."""
    body = {"org_id": str(org_id), "schedule_name": schedule_name}

    def run(_: int) -> httpx.Response:
        key = f"race-{uuid.uuid4().hex}"
        return http.post(
            "/api/v1/system/contracts/drift/schedule-run",
            json=body,
            headers={"Idempotency-Key": key},
        )

    first = run(0)
    assert first.status_code == 200, first.text
    assert first.json()["data"]["trigger"]["executed"] is True
    with ThreadPoolExecutor(max_workers=RACERS) as pool:
        responses = list(pool.map(run, range(RACERS)))
    assert Counter(r.status_code for r in responses) == {200: RACERS}, [r.text for r in responses][
        :2
    ]
    return [r.json()["data"]["notify"] for r in responses]


def test_racing_schedule_runs_send_one_alert_per_anomaly(
    database_url: str, engine: Engine, admin, tmp_path: Path
) -> None:
    seed_drift(engine, admin.org_id, breaking=1)
    with (
        WebhookReceiver() as receiver,
        uvicorn_workers(
            database_url,
            workers=2,
            log=tmp_path / "uvicorn.log",
            env={"NOTIFY_WEBHOOK_URL": receiver.url},
        ) as base_url,
        httpx.Client(base_url=base_url, headers=admin.headers, timeout=60) as http,
    ):
        policy = http.post(
            "/api/v1/system/contracts/drift-policy",
            json={
                "enabled": True,
                "alert_enabled": True,
                "alert_min_execution_rate": 1.0,
                "alert_max_dedupe_hit_rate": 1.0,
                "alert_cooldown_minutes": 60,
            },
        )
        assert policy.status_code == 200, policy.text
        for repetition in range(REPETITIONS):
            name = f"race-{repetition}"
            notifies = _race(http, admin.org_id, name)
            outcomes = Counter(n["outcome"] for n in notifies)
            sent = [json.loads(r.body) for r in receiver.received]
            alerts = [
                m for m in sent if m.get("type") == ANOMALY and m["data"]["schedule_name"] == name
            ]
            assert len(alerts) == 1, (repetition, outcomes, len(alerts))
            assert outcomes["sent"] == 1 and outcomes["suppressed"] == RACERS - 1, outcomes
            assert {n["fingerprint"] for n in notifies} == {alerts[0]["data"]["fingerprint"]}
