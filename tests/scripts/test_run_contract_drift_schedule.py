"""scripts/run_contract_drift_schedule.sh against a live API, run as the runbook runs it.

docs/reference/operations.md#the-schedule-script
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import Engine

from driftwarden.cli import schedule_client
from driftwarden.scheduler import signals
from tests.scheduler.conftest import seed_drift
from tests.support import ON_POSTGRES, LiveServer, WebhookReceiver, free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "run_contract_drift_schedule.sh"
KEY_LINE = re.compile(r"Idempotency-Key: (\S+)\)")
# Tests that wait out real curl backoff (1 s and up): in CI's Postgres pass, or with RUN_SLOW=1.
slow = pytest.mark.skipif(
    not (os.environ.get("RUN_SLOW") == "1" or ON_POSTGRES),
    reason="waits out curl's retry backoff; RUN_SLOW=1 or RUN_DB_INTEGRATION=1",
)


def run_script(env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    return subprocess.run(
        ["bash", str(SCRIPT)],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


@pytest.fixture
def live(app, engine: Engine, admin, client):  # type: ignore[no-untyped-def]
    """The API on a real port, with drift and an enabled, alerting policy."""
    seed_drift(engine, admin.org_id)
    response = client.post(
        "/api/v1/system/contracts/drift-policy",
        headers=admin.headers,
        json={"enabled": True, "alert_enabled": True},
    )
    assert response.status_code == 200
    with LiveServer(app) as server:
        yield {
            "BASE_URL": server.url,
            "API_KEY": admin.api_key,
            "ORG_ID": str(admin.org_id),
            "API_PREFIX": "/api/v1",
        }


BAD_INPUTS = [
    ({"BASE_URL": ""}, "BASE_URL is required"),
    ({"BASE_URL": "ftp://x"}, "BASE_URL must be an http(s) URL"),
    ({"API_KEY": ""}, "API_KEY is required"),
    ({"ORG_ID": ""}, "ORG_ID is required"),
    ({"ORG_ID": "acme"}, "ORG_ID must be a UUID"),
    ({"API_PREFIX": "api"}, "API_PREFIX must start with '/'"),
    ({"DRY_RUN": "yes"}, "DRY_RUN must be true or false"),
    ({"FORCE": "TRUE"}, "FORCE must be true or false"),
    ({"FORCE_NOTIFY": "1"}, "FORCE_NOTIFY must be true or false"),
    ({"WINDOW_MINUTES": "1h"}, "WINDOW_MINUTES must be a whole number"),
    ({"WINDOW_MINUTES": "4"}, "WINDOW_MINUTES must be 5-10080"),
    ({"SUMMARY_WINDOW_DAYS": "-1"}, "SUMMARY_WINDOW_DAYS must be a whole number"),
    ({"SUMMARY_WINDOW_DAYS": "366"}, "SUMMARY_WINDOW_DAYS must be 1-365"),
    ({"LIMIT": "0"}, "LIMIT must be 1-1000"),
    ({"LIMIT": "ten"}, "LIMIT must be a whole number"),
    ({"MIN_DRIFT": "major"}, "MIN_DRIFT must be warning, breaking or invalid"),
    ({"SCHEDULE_NAME": "Daily Run"}, "SCHEDULE_NAME must match"),
    ({"AGENT_ID": "bot-1"}, "AGENT_ID must be a UUID"),
    ({"MAX_RETRIES": "many"}, "MAX_RETRIES must be a whole number"),
    ({"ESCALATION_AGENT_ID": "bot-1"}, "ESCALATION_AGENT_ID must be a UUID"),
    ({"DISABLED_OK": "yes"}, "DISABLED_OK must be true or false"),
    # past 2^64: bash arithmetic would wrap it into range; checked as a string instead
    ({"LIMIT": "18446744073709551621"}, "LIMIT must be 1-1000"),
    ({"WINDOW_MINUTES": "18446744073709551621"}, "WINDOW_MINUTES must be 5-10080"),
    ({"MAX_RETRIES": "99999999999999999999"}, "MAX_RETRIES must have at most 9 digits"),
]


@pytest.mark.parametrize(("override", "message"), BAD_INPUTS)
def test_bad_input_exits_2_before_any_request(
    override: dict[str, str], message: str, receiver
) -> None:
    env = {
        "BASE_URL": receiver.url.removesuffix("/hook"),
        "API_KEY": "dwk_x",
        "ORG_ID": str(uuid.uuid4()),
        **override,
    }
    result = run_script(env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and result.stdout == ""
    assert receiver.received == []  # the stand-in API saw no request
    with pytest.raises(schedule_client.InputError, match=re.escape(message)):
        schedule_client.config_from_env(env)


def _policy_updated_at(client, admin) -> str:  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/system/contracts/drift-policy", headers=admin.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]["updated_at"]


def test_success_replay_outputs_and_a_deliberately_different_request(
    live, tmp_path: Path, receiver, client, admin
) -> None:
    env = {
        **live,
        "OUTPUT_FILE": str(tmp_path / "response.json"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
    }
    first = run_script(env)
    assert first.returncode == 0, first.stderr
    response = json.loads((tmp_path / "response.json").read_text())
    assert response["data"]["trigger"]["executed"] is True
    assert (
        "signals: trigger.executed=true trigger.deduped=false notify.anomaly_detected=false"
        in first.stdout
    )
    summary = (tmp_path / "summary.md").read_text()
    for path in signals.SIGNAL_PATHS:
        assert f"`{path}`" in summary
    replay = run_script(env)
    assert replay.returncode == 0 and "replayed the first response" in replay.stderr
    assert json.loads((tmp_path / "response.json").read_text()) == response
    key = KEY_LINE.search(first.stderr).group(1)  # type: ignore[union-attr]
    assert KEY_LINE.search(replay.stderr).group(1) == key  # type: ignore[union-attr]
    body = {"org_id": live["ORG_ID"]}
    updated_at = _policy_updated_at(client, admin)
    assert key == schedule_client.idempotency_key(
        body, now=time.time(), policy_updated_at=updated_at
    )
    forced = run_script({**env, "FORCE": "true"})
    assert forced.returncode == 0 and "replayed" not in forced.stderr
    assert KEY_LINE.search(forced.stderr).group(1) != key  # type: ignore[union-attr]
    assert json.loads((tmp_path / "response.json").read_text())["data"]["trigger"]["forced"] is True
    deduped = run_script({**env, "IDEMPOTENCY_KEY": "operator-rerun-1"})
    assert deduped.returncode == 0 and "trigger.deduped=true" in deduped.stdout


def test_failed_notification_exits_3(live, receiver: WebhookReceiver) -> None:
    receiver.default = (500, {}, 0.0)
    result = run_script({**live, "FORCE_NOTIFY": "true"})
    assert result.returncode == 3, result.stderr
    assert "notification.sent=false" in result.stdout and "notification failed" in result.stderr
    assert re.search(r"escalation_pattern=[0-9a-f-]{36}", result.stdout)


@pytest.mark.slow
@slow
def test_api_down_exits_1_with_a_clear_message() -> None:
    env = {
        "BASE_URL": f"http://127.0.0.1:{free_port()}",
        "API_KEY": "dwk_x",
        "ORG_ID": str(uuid.uuid4()),
        "MAX_RETRIES": "1",
    }
    result = run_script(env)
    assert result.returncode == 1
    assert "API call failed: could not reach" in result.stderr and "uvicorn.log" in result.stderr


def test_http_error_exits_1_with_status_and_code(live) -> None:
    result = run_script({**live, "API_KEY": "dwk_wrong"})
    assert result.returncode == 1
    assert "API call failed: HTTP 401 UNAUTHORIZED" in result.stderr


@pytest.mark.slow
@slow
def test_5xx_is_retried_with_the_same_key(receiver) -> None:
    receiver.responses.append((503, {}, 0.0))
    env = {
        "BASE_URL": receiver.url.removesuffix("/hook"),
        "API_KEY": "dwk_x",
        "ORG_ID": str(uuid.uuid4()),
        "MAX_RETRIES": "1",
        "IDEMPOTENCY_KEY": "k-5xx",
    }  # a set key: no policy read from the stand-in
    result = run_script(env)
    paths = {r.path for r in receiver.received}
    keys = {r.headers["idempotency-key"] for r in receiver.received}
    assert len(receiver.received) == 2 and len(keys) == 1
    assert paths == {"/api/system/contracts/drift/schedule-run"}
    assert (
        result.returncode == 1 and "HTTP 200 NO_ENVELOPE" in result.stderr
    )  # the fake's 200 is not an envelope


@pytest.fixture
def five_minute_policy(live, client, admin):  # type: ignore[no-untyped-def]
    """The live org's policy runs on 5-minute windows."""
    response = client.post(
        "/api/v1/system/contracts/drift-policy",
        headers=admin.headers,
        json={"schedule_window_minutes": 5},
    )
    assert response.status_code == 200, response.text
    return live


def test_key_window_is_the_policys_when_window_minutes_is_unset(
    five_minute_policy, tmp_path: Path, client, admin
) -> None:
    """A 5-minute policy: the derived key changes every 5 minutes, as the server's window does.

    Not daily. Run with the default (legacy) API_PREFIX `/api`, as the workflow runs it.
    """
    env = {k: v for k, v in five_minute_policy.items() if k != "API_PREFIX"}
    before = time.time()
    result = run_script({**env, "OUTPUT_FILE": str(tmp_path / "response.json")})
    after = time.time()
    assert result.returncode == 0, result.stderr
    assert f"POST {env['BASE_URL']}/api/system/contracts/drift/schedule-run " in result.stderr
    assert json.loads((tmp_path / "response.json").read_text())["data"]["window_minutes"] == 5
    key = KEY_LINE.search(result.stderr).group(1)  # type: ignore[union-attr]
    body = {"org_id": five_minute_policy["ORG_ID"]}
    updated_at = _policy_updated_at(client, admin)
    assert key in {
        schedule_client.idempotency_key(body, now=t, window_minutes=5, policy_updated_at=updated_at)
        for t in (before, after)
    }


class _DropsFirstRequest(BaseHTTPRequestHandler):
    """A stand-in API whose first answer is lost: the connection closes with no response at all."""

    seen: list[str] = []
    ANSWER = json.dumps(
        {
            "ok": True,
            "data": {
                "schedule_name": "daily",
                "dry_run": False,
                "trigger": {"executed": True, "deduped": False, "outcome": "executed"},
                "notify": {
                    "anomaly_detected": False,
                    "notified": False,
                    "notification": None,
                    "escalation_pattern": None,
                    "outcome": "skipped",
                },
            },
        }
    ).encode()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append(self.headers["Idempotency-Key"])
        if len(self.seen) == 1:
            self.close_connection = True  # curl: "Empty reply from server" (exit 52)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.ANSWER)))
        self.end_headers()
        self.wfile.write(self.ANSWER)

    def log_message(self, *args: object) -> None:
        return


@pytest.mark.slow
@slow
def test_a_dropped_connection_is_retried_with_the_same_key() -> None:
    _DropsFirstRequest.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _DropsFirstRequest)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        env = {
            "BASE_URL": f"http://127.0.0.1:{server.server_address[1]}",
            "API_KEY": "dwk_x",
            "ORG_ID": str(uuid.uuid4()),
            "IDEMPOTENCY_KEY": "k-dropped",
            "MAX_RETRIES": "2",
        }
        result = run_script(env)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    assert len(_DropsFirstRequest.seen) == 2 and len(set(_DropsFirstRequest.seen)) == 1
    assert "signals: trigger.executed=true" in result.stdout
