"""The runbook's Operational Flow, end to end, against real PostgreSQL (docs/runbook.md).

Run as the runbook says:
    RUN_DB_INTEGRATION=1 PYTHONPATH=. pytest -q tests/test_contract_drift_schedule_integration.py
Skipped (not failed) without RUN_DB_INTEGRATION=1. Two uvicorn worker processes serve the API; the
script is run as a subprocess, exactly as the scheduled workflow runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from driftwarden.db.engine import make_session_factory
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.patterns.models import IssuePattern
from driftwarden.scheduler.models import TriggerAlertState
from tests.support import ON_POSTGRES, WebhookReceiver

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not ON_POSTGRES, reason="DB integration: set RUN_DB_INTEGRATION=1 (runbook)"
    ),
]
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "run_contract_drift_schedule.sh"


def _script(env: dict[str, str], output: Path) -> tuple[int, dict[str, Any], str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = subprocess.run(
        ["bash", str(SCRIPT)],
        env={**base, **env, "OUTPUT_FILE": str(output)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    return result.returncode, json.loads(output.read_text()), result.stdout + result.stderr


def _signals(doc: dict[str, Any]) -> tuple:
    data = doc["data"]
    notification = data["notify"]["notification"]
    return (
        data["trigger"]["executed"],
        data["trigger"]["deduped"],
        data["notify"]["anomaly_detected"],
        data["notify"]["notified"],
        notification["sent"] if notification else None,
        data["notify"]["escalation_pattern"] is not None,
    )


def test_operational_flow_with_failed_alert_escalation_then_dedupe_and_suppression(
    database_url: str, engine: Engine, admin, tmp_path: Path
) -> None:
    from tests.scheduler.conftest import seed_drift
    from tests.scheduler.servers import uvicorn_workers

    agent_id = seed_drift(engine, admin.org_id)
    out = tmp_path / "response.json"
    with (
        WebhookReceiver(default=(500, {}, 0.0)) as hook,
        uvicorn_workers(
            database_url,
            workers=2,
            log=tmp_path / "uvicorn.log",
            env={"NOTIFY_WEBHOOK_URL": hook.url},
        ) as base_url,
        httpx.Client(base_url=f"{base_url}/api/v1", headers=admin.headers, timeout=30) as api,
    ):
        policy = api.post(
            "/system/contracts/drift-policy",
            json={
                "enabled": True,
                "alert_enabled": True,
                "alert_max_dedupe_hit_rate": 0.5,
                "alert_min_execution_rate": 0.0,
                "alert_cooldown_minutes": 60,
            },
        )
        assert policy.status_code == 200, policy.text
        env = {
            "BASE_URL": base_url,
            "API_PREFIX": "/api/v1",
            "API_KEY": admin.api_key,
            "ORG_ID": str(admin.org_id),
            "AGENT_ID": str(agent_id),
        }

        # 1. Trigger drift promotion: the window executes, patterns are created,
        #    nothing anomalous yet.
        code, first, _ = _script(env, out)
        assert code == 0 and _signals(first) == (True, False, False, False, None, False)
        assert first["data"]["trigger"]["promote"]["created_pattern_count"] == 2
        code, replay, logs = _script(
            env, out
        )  # the same scheduled job re-run: replayed, nothing runs twice
        assert code == 0 and replay == first and "replayed" in logs

        # 2-4. A duplicate scheduler (new key, same window): deduped, anomaly,
        #      send fails -> escalation, exit 3.
        code, second, logs = _script({**env, "IDEMPOTENCY_KEY": "duplicate-scheduler-1"}, out)
        assert code == 3, logs
        assert _signals(second) == (False, True, True, False, False, True)
        assert second["data"]["notify"]["reasons"] == ["dedupe_hit_rate_high"]
        escalation = second["data"]["notify"]["escalation_pattern"]
        assert (
            escalation["primary_tag"] == "contract_drift_alert_delivery"
            and escalation["priority"] == "high"
        )

        # The webhook recovers: the next duplicate is deduped and the alert is sent ...
        hook.default = (200, {}, 0.0)
        code, third, logs = _script({**env, "IDEMPOTENCY_KEY": "duplicate-scheduler-2"}, out)
        assert code == 0 and _signals(third) == (False, True, True, True, True, False), logs
        # ... and the one after is deduped and suppressed by the cooldown (same fingerprint).
        code, fourth, _ = _script({**env, "IDEMPOTENCY_KEY": "duplicate-scheduler-3"}, out)
        assert code == 0 and _signals(fourth) == (False, True, True, False, None, False)
        assert fourth["data"]["notify"]["outcome"] == "suppressed"
        assert fourth["data"]["notify"]["fingerprint"] == third["data"]["notify"]["fingerprint"]

        # Failure Handling, as the runbook lists it, through the API.
        org = {"org_id": str(admin.org_id)}
        patterns = api.get(
            "/patterns", params={**org, "primary_tag": "contract_drift_alert_delivery"}
        ).json()
        assert patterns["data"]["total_count"] == 1 and patterns["data"]["items"][0][
            "agent_id"
        ] == str(agent_id)
        outbox = api.get(
            "/system/notifications/outbox",
            params={**org, "event_type": "contract_drift.trigger_anomaly"},
        )
        assert outbox.status_code == 200 and outbox.json()["data"]["total_count"] == 2
        assert (
            api.get("/system/notifications/outbox/dead-letter-summary", params=org).status_code
            == 200
        )
        failed_audit = api.get(
            "/system/audit-logs", params={"error_code": "CONTRACT_DRIFT_ANOMALY_NOTIFY_FAILED"}
        )
        assert failed_audit.json()["data"]["total_count"] == 1
        delivery = api.get(
            "/system/contracts/drift/trigger-alert-delivery",
            params={**org, "schedule_name": "daily"},
        ).json()["data"]
        assert (delivery["sent_count"], delivery["failed_count"], delivery["suppressed_count"]) == (
            1,
            1,
            1,
        )
        summary = api.get(
            "/system/contracts/drift/trigger-summary", params={**org, "schedule_name": "daily"}
        )
        assert (
            summary.json()["data"]["executed_count"] == 1
            and summary.json()["data"]["deduped_count"] == 3
        )

    with make_session_factory(engine)() as session:
        [state] = session.scalars(select(TriggerAlertState)).all()
        assert state.alert_fingerprint == third["data"]["notify"]["fingerprint"]
        [pattern] = session.scalars(
            select(IssuePattern).where(IssuePattern.primary_tag == "contract_drift_alert_delivery")
        ).all()
        assert pattern.status == "detected" and pattern.evidence["status_code"] == 500
        failed_message = session.scalars(
            select(NotificationOutbox).where(
                NotificationOutbox.id == second["data"]["notify"]["notification"]["outbox_id"]
            )
        ).one()
        assert (
            failed_message.status == "pending" and failed_message.attempt_count == 1
        )  # left for the worker
