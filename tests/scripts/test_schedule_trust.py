"""The script and `driftwarden schedule-run` an operator can trust: a disabled policy says so
(exit 4), a policy change gets a new key, the escalation target, retries of 409 and 503."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from driftwarden.cli import app as cli_app
from driftwarden.cli import schedule_client
from tests.scheduler.conftest import seed_drift
from tests.scripts.test_run_contract_drift_schedule import KEY_LINE, run_script, slow
from tests.support import LiveServer

runner = CliRunner()
OK = {
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
IN_PROGRESS = {
    "ok": False,
    "error": {"code": "IDEMPOTENCY_IN_PROGRESS", "message": "still running"},
}


def code(result) -> int:  # type: ignore[no-untyped-def]
    """The exit code of a script run or a CLI invocation."""
    return result.returncode if hasattr(result, "returncode") else result.exit_code


def run_cli(env: dict[str, str]):  # type: ignore[no-untyped-def]
    names = (
        "BASE_URL",
        "API_KEY",
        "ORG_ID",
        "IDEMPOTENCY_KEY",
        "OUTPUT_FILE",
        "GITHUB_STEP_SUMMARY",
        "FORCE",
        "FORCE_NOTIFY",
        "DRY_RUN",
        "AGENT_ID",
        "ESCALATION_AGENT_ID",
        "DISABLED_OK",
        "WINDOW_MINUTES",
    )
    return runner.invoke(cli_app, ["schedule-run"], env={**dict.fromkeys(names, ""), **env})


@pytest.fixture
def fresh_org(app, engine: Engine, admin) -> Iterator[dict]:  # type: ignore[no-untyped-def]
    """A live API and an org whose policy was never touched: the defaults, disabled."""
    seed_drift(engine, admin.org_id)
    with LiveServer(app) as server:
        yield {
            "BASE_URL": server.url,
            "API_KEY": admin.api_key,
            "ORG_ID": str(admin.org_id),
            "API_PREFIX": "/api/v1",
        }


def _run_enable_command(warning: str, api_key: str) -> None:
    """Runs the command the warning names, exactly as printed, in a shell with API_KEY set."""
    command = warning.split("enable it with: ", 1)[1].strip()
    done = subprocess.run(
        ["bash", "-c", command + " -fsS -o /dev/null"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": os.environ["PATH"], "API_KEY": api_key},
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("tool", ["script", "cli"])
def test_a_disabled_policy_exits_4_names_the_fix_and_a_policy_change_gets_a_new_key(
    fresh_org, tool: str, tmp_path: Path
) -> None:
    run = run_script if tool == "script" else run_cli
    summary = tmp_path / "summary.md"
    first = run({**fresh_org, "GITHUB_STEP_SUMMARY": str(summary)})
    assert code(first) == 4, first.stderr
    assert (
        "warning: nothing ran: the policy is disabled (trigger.outcome=policy_disabled)"
        in first.stderr
    )
    assert (
        "> [!WARNING]" in summary.read_text()
        and "enable it with: curl -X POST" in summary.read_text()
    )
    accepted = run({**fresh_org, "DISABLED_OK": "true"})
    assert code(accepted) == 0, accepted.stderr
    key = KEY_LINE.search(first.stderr).group(1)  # type: ignore[union-attr]
    assert KEY_LINE.search(accepted.stderr).group(1) == key  # type: ignore[union-attr]
    warning = next(line for line in first.stderr.splitlines() if "enable it with" in line)
    _run_enable_command(warning, fresh_org["API_KEY"])
    enabled = run({**fresh_org, "DISABLED_OK": "true"})
    assert code(enabled) == 0, enabled.stderr
    assert KEY_LINE.search(enabled.stderr).group(1) != key  # type: ignore[union-attr]
    assert "replayed" not in enabled.stderr and "trigger.outcome=executed" in enabled.stdout


def test_a_set_window_still_keys_on_the_policys_last_change(fresh_org) -> None:
    env = {**fresh_org, "WINDOW_MINUTES": "1440", "DISABLED_OK": "true"}
    before = KEY_LINE.search(run_script(env).stderr).group(1)  # type: ignore[union-attr]
    response = httpx.post(
        f"{fresh_org['BASE_URL']}/api/v1/system/contracts/drift-policy",
        headers={"Authorization": f"Bearer {fresh_org['API_KEY']}"},
        json={"alert_enabled": True},
    )
    assert response.status_code == 200, response.text
    after = run_script(env)
    assert KEY_LINE.search(after.stderr).group(1) != before  # type: ignore[union-attr]
    assert "replayed" not in after.stderr


class _Scripted(BaseHTTPRequestHandler):
    """A stand-in API: answers POSTs from `answers` in order (then 200 OK), records what it got."""

    answers: ClassVar[list[tuple[int, dict[str, str], dict]]] = []
    seen: ClassVar[list[tuple[float, str, dict]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.seen.append((time.monotonic(), self.headers["Idempotency-Key"], body))
        status, headers, doc = self.answers.pop(0) if self.answers else (200, {}, OK)
        data = json.dumps(doc).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def scripted() -> Iterator[dict[str, str]]:
    _Scripted.answers, _Scripted.seen = [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        yield {
            "BASE_URL": f"http://127.0.0.1:{server.server_address[1]}",
            "API_KEY": "dwk_x",
            "ORG_ID": str(uuid.uuid4()),
            "IDEMPOTENCY_KEY": "fixed-key",
        }
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("tool", ["script", "cli"])
def test_escalation_agent_is_sent_only_when_set(scripted, tool: str) -> None:
    run = run_script if tool == "script" else run_cli
    agent, target = str(uuid.uuid4()), str(uuid.uuid4())
    assert code(run({**scripted, "AGENT_ID": agent})) == 0
    run({**scripted, "ESCALATION_AGENT_ID": target})
    first, second = (body for _, _, body in _Scripted.seen)
    assert first == {"org_id": scripted["ORG_ID"], "agent_id": agent}
    assert second == {"org_id": scripted["ORG_ID"], "escalation_agent_id": target}


@pytest.mark.parametrize("tool", ["script", "cli"])
def test_409_in_progress_is_retried_after_retry_after_with_the_same_key(
    scripted, tool: str
) -> None:
    _Scripted.answers = [
        (409, {"Retry-After": "0"}, IN_PROGRESS),
        (409, {"Retry-After": "1"}, IN_PROGRESS),
    ]
    started = time.monotonic()
    result = (run_script if tool == "script" else run_cli)(scripted)
    elapsed = time.monotonic() - started
    assert code(result) == 0, result.stderr
    assert [key for _, key, _ in _Scripted.seen] == ["fixed-key"] * 3
    gaps = [b[0] - a[0] for a, b in zip(_Scripted.seen, _Scripted.seen[1:], strict=False)]
    assert gaps[0] < 1 <= gaps[1] and elapsed < 5  # Retry-After honoured, not the 5 s default


def test_a_conflict_that_is_not_in_progress_is_not_retried(scripted) -> None:
    conflict = {
        "ok": False,
        "error": {"code": "IDEMPOTENCY_KEY_REUSED", "message": "other body"},
    }
    _Scripted.answers = [(409, {"Retry-After": "0"}, conflict)]
    result = run_script(scripted)
    assert result.returncode == 1 and len(_Scripted.seen) == 1
    assert "HTTP 409 IDEMPOTENCY_KEY_REUSED" in result.stderr


def _waits(answers: list[httpx.Response], retry_max_seconds: float = 120) -> list[float]:
    responses = iter(answers)
    config = schedule_client.RunConfig(
        url="http://127.0.0.1:9/x",
        api_key="k",
        body={"org_id": "o"},
        idempotency_key="same",
        retry_max_seconds=retry_max_seconds,
    )
    waits: list[float] = []
    result = schedule_client.call(
        config,
        transport=httpx.MockTransport(lambda _r: next(responses)),
        sleep=waits.append,
    )
    assert result.status == answers[-1].status_code
    return waits


def test_client_honours_retry_after_on_409_and_503_within_the_budget() -> None:
    in_progress = httpx.Response(409, headers={"Retry-After": "7"}, json=IN_PROGRESS)
    overloaded = httpx.Response(
        503,
        headers={"Retry-After": "3"},
        json={"ok": False, "error": {"code": "SERVICE_OVERLOADED", "message": "busy"}},
    )
    bare_409 = httpx.Response(409, json=IN_PROGRESS)
    done = httpx.Response(200, json=OK)
    assert _waits([in_progress, overloaded, bare_409, done]) == [7, 3, 5]
    long_lease = httpx.Response(409, headers={"Retry-After": "280"}, json=IN_PROGRESS)
    waits = _waits([long_lease] * 5, retry_max_seconds=2)  # (sleep is faked: no time passes)
    assert len(waits) == 4 and all(
        1.5 < w <= 2 for w in waits
    )  # each wait within RETRY_MAX_SECONDS, and MAX_RETRIES (4) of them


def test_digit_count_is_checked_before_int() -> None:
    env = {
        "BASE_URL": "http://127.0.0.1:9",
        "API_KEY": "k",
        "ORG_ID": str(uuid.uuid4()),
    }
    assert schedule_client.config_from_env({**env, "LIMIT": "0001000"}).body["limit"] == 1000
    with pytest.raises(schedule_client.InputError, match="LIMIT must be 1-1000"):
        schedule_client.config_from_env({**env, "LIMIT": "9" * 5000})


@pytest.mark.slow
@slow
def test_script_retries_a_503_after_its_retry_after_with_the_same_key(scripted) -> None:
    """curl's --retry honours Retry-After: 2 s here, where its own first backoff would be 1 s."""
    overloaded = {
        "ok": False,
        "error": {"code": "SERVICE_OVERLOADED", "message": "busy"},
    }
    _Scripted.answers = [(503, {"Retry-After": "2"}, overloaded)]
    result = run_script(scripted)
    assert result.returncode == 0, result.stderr
    assert [key for _, key, _ in _Scripted.seen] == ["fixed-key"] * 2
    assert _Scripted.seen[1][0] - _Scripted.seen[0][0] >= 1.9
