"""The command line.

docs/reference/operations.md#command-line

`driftwarden schedule-run` behaves like the script; `driftwarden demo` shows the main job.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from driftwarden.cli import app as cli_app
from driftwarden.cli import schedule_client as client
from driftwarden.scheduler import signals
from tests.scheduler.conftest import seed_drift, set_policy
from tests.support import LiveServer, free_port

runner = CliRunner()


@pytest.fixture
def live(app, engine: Engine, admin, client):  # type: ignore[no-untyped-def]
    seed_drift(engine, admin.org_id)
    set_policy(client, admin, enabled=True, alert_enabled=True)
    with LiveServer(app) as server:
        yield {
            "BASE_URL": server.url,
            "API_KEY": admin.api_key,
            "ORG_ID": str(admin.org_id),
            "API_PREFIX": "/api/v1",
        }


def _run(env: dict[str, str]):  # type: ignore[no-untyped-def]
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
    )
    base = dict.fromkeys(names, "")
    return runner.invoke(cli_app, ["schedule-run"], env={**base, **env})


def test_schedule_run_success_replay_and_outputs(live, tmp_path: Path) -> None:
    env = {
        **live,
        "OUTPUT_FILE": str(tmp_path / "out.json"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "sum.md"),
    }
    first = _run(env)
    assert first.exit_code == 0, first.output
    assert "signals: trigger.executed=true trigger.deduped=false" in first.stdout
    response = json.loads((tmp_path / "out.json").read_text())
    assert response["data"]["trigger"]["executed"] is True
    assert "`data.notify.escalation_pattern`" in (tmp_path / "sum.md").read_text()
    replay = _run(env)
    assert replay.exit_code == 0 and "replayed the first response" in replay.stderr
    assert json.loads((tmp_path / "out.json").read_text()) == response


def test_schedule_run_exit_codes(live, receiver) -> None:
    assert _run({**live, "LIMIT": "0"}).exit_code == 2
    assert _run({**live, "API_KEY": "dwk_nope"}).exit_code == 1
    receiver.default = (500, {}, 0.0)
    failed = _run({**live, "FORCE_NOTIFY": "true", "IDEMPOTENCY_KEY": "cli-fail"})
    assert failed.exit_code == 3 and "notification failed" in failed.stderr


def test_schedule_run_api_down_exits_1() -> None:
    env = {
        "BASE_URL": f"http://127.0.0.1:{free_port()}",
        "API_KEY": "dwk_x",
        "ORG_ID": str(uuid.uuid4()),
        "MAX_RETRIES": "0",
    }
    result = _run(env)
    assert result.exit_code == 1 and "could not reach" in result.stderr


def test_client_retries_5xx_and_network_errors_with_the_same_key() -> None:
    seen: list[str] = []
    answers = iter(
        [
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(429),
            httpx.Response(200, json={"ok": True, "data": {}}),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["idempotency-key"])
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    config = client.RunConfig(
        url="http://127.0.0.1:9/x",
        api_key="k",
        body={"org_id": "o"},
        idempotency_key="same",
        max_retries=3,
        retry_max_seconds=60,
    )
    waits: list[float] = []
    result = client.call(config, transport=httpx.MockTransport(handler), sleep=waits.append)
    assert result.status == 200 and seen == ["same"] * 4
    assert waits == [1, 2, 4]  # exponential backoff


def test_key_depends_on_body_and_window_only() -> None:
    body = {"org_id": "o", "window_minutes": 60}
    start = 1_764_072_000  # a whole hour
    key = client.idempotency_key(body, now=start + 10)
    assert client.idempotency_key(dict(reversed(list(body.items()))), now=start + 3599) == key
    assert client.idempotency_key(body, now=start + 3600) != key
    assert client.idempotency_key({**body, "force": True}, now=start + 10) != key


def test_demo_runs_the_main_job_end_to_end(tmp_path: Path) -> None:
    result = runner.invoke(
        cli_app,
        ["demo", "--db", str(tmp_path / "demo.db")],
        env={"NOTIFY_WEBHOOK_URL": "", "DATABASE_URL": ""},
    )
    assert result.exit_code == 0, result.output
    for path in signals.SIGNAL_PATHS:
        assert path in result.stdout
    assert "drift found:      4 findings (2 breaking, 1 warning, 1 invalid)" in result.stdout
    assert "patterns created: 4" in result.stdout and "alert delivered:  yes" in result.stdout
    assert "signature verified" in result.stdout


def test_client_does_not_retry_a_4xx() -> None:
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        return httpx.Response(
            422, json={"ok": False, "error": {"code": "VALIDATION_ERROR", "message": "bad"}}
        )

    config = client.RunConfig(
        url="http://127.0.0.1:9/x", api_key="k", body={}, idempotency_key="k1"
    )
    result = client.call(config, transport=httpx.MockTransport(handler), sleep=lambda _s: None)
    assert len(seen) == 1 and client.outcome(result) == (
        1,
        "API call failed: HTTP 422 VALIDATION_ERROR: bad",
    )


def test_client_keys_each_policy_window_apart_when_window_minutes_is_unset() -> None:
    """An hourly policy with WINDOW_MINUTES unset: the next hour's run gets a new key.

    Not a day-long replay.
    """
    org = str(uuid.uuid4())
    sent: list[tuple[str, str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append((request.method, request.url.path, request.headers.get("idempotency-key")))
        if request.method == "GET":
            assert request.url.params["org_id"] == org
            return httpx.Response(200, json={"ok": True, "data": {"schedule_window_minutes": 60}})
        return httpx.Response(200, json={"ok": True, "data": {}})

    config = client.config_from_env(
        {"BASE_URL": "http://127.0.0.1:9", "API_KEY": "k", "ORG_ID": org}
    )
    assert config.idempotency_key is None and "window_minutes" not in config.body
    day = 1_764_028_800  # a whole UTC day
    for now in (day + 10, day + 3599, day + 3610):
        assert client.is_success(
            client.call(config, transport=httpx.MockTransport(handler), now=now)
        )
    assert [(m, p) for m, p, _ in sent] == [
        ("GET", "/api/system/contracts/drift-policy"),
        ("POST", "/api/system/contracts/drift/schedule-run"),
    ] * 3
    first, same_hour, next_hour = (key for method, _, key in sent if method == "POST")
    assert first == same_hour == client.idempotency_key({"org_id": org}, now=day, window_minutes=60)
    assert next_hour != first


def test_client_reports_a_failed_policy_read_without_posting() -> None:
    methods: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        methods.append(request.method)
        return httpx.Response(
            403, json={"ok": False, "error": {"code": "FORBIDDEN", "message": "admin required"}}
        )

    config = client.config_from_env(
        {"BASE_URL": "http://127.0.0.1:9", "API_KEY": "k", "ORG_ID": str(uuid.uuid4())}
    )
    result = client.call(config, transport=httpx.MockTransport(handler), sleep=lambda _s: None)
    assert methods == ["GET"]
    assert client.outcome(result) == (1, "API call failed: HTTP 403 FORBIDDEN: admin required")


@pytest.mark.parametrize("value", ["²", "٥", "1_0", " 5"])
def test_numbers_are_ascii_digits_as_in_the_script(value: str) -> None:
    """Unicode digits pass str.isdigit (and '²' then crashes int()).

    The script accepts [0-9]+ only: exit 2.
    """
    env = {"BASE_URL": "http://127.0.0.1:9", "API_KEY": "k", "ORG_ID": str(uuid.uuid4())}
    for name in ("WINDOW_MINUTES", "MAX_RETRIES"):
        with pytest.raises(client.InputError, match=f"{name} must be a whole number"):
            client.config_from_env({**env, name: value})
