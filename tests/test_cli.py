"""docs/reference/operations.md#command-line: the foundation's CLI verbs."""

from __future__ import annotations

import logging
import logging.config
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from typer.testing import CliRunner

from driftwarden.cli import app
from driftwarden.db import migrate
from driftwarden.logs import uvicorn_log_config
from driftwarden.settings import Settings
from tests.support import ON_POSTGRES, free_port

runner = CliRunner()


def test_bootstrap_prints_eval_lines_and_the_key_works(
    database_url: str, client, monkeypatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = runner.invoke(app, ["bootstrap", "--org-name", "Acme"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split("=", 1) for line in result.stdout.strip().splitlines())
    assert set(lines) == {"ORG_ID", "API_KEY"} and re.fullmatch(r"dwk_[\w-]{40}", lines["API_KEY"])
    agents = client.get("/api/v1/agents", headers={"Authorization": f"Bearer {lines['API_KEY']}"})
    assert agents.status_code == 200
    org = client.get(
        f"/api/v1/system/orgs/{lines['ORG_ID']}",
        headers={"Authorization": f"Bearer {lines['API_KEY']}"},
    )
    assert org.json()["data"]["name"] == "Acme"


def test_global_bootstrap_key_needs_org_id(database_url: str, client, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = runner.invoke(app, ["bootstrap", "--org-name", "Platform", "--global"])
    assert result.exit_code == 0, result.output
    key = dict(line.split("=", 1) for line in result.stdout.strip().splitlines())["API_KEY"]
    response = client.get("/api/v1/agents", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 422


def test_db_current_reports_behind_and_upgrade_fixes_it(database_url: str, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert runner.invoke(app, ["db", "current"]).exit_code == 0
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    migrate.downgrade(engine, "0001")
    behind = runner.invoke(app, ["db", "current"])
    assert behind.exit_code == 1 and "(behind)" in behind.stdout
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    assert migrate.is_at_head(engine)
    engine.dispose()


def test_postgres_schema_behind_is_refused(database_url: str, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    migrate.downgrade(engine, "0001")  # a real downgrade: later migrations create tables again
    result = runner.invoke(app, ["bootstrap", "--org-name", "x"])
    if ON_POSTGRES:
        assert result.exit_code == 1 and "driftwarden db upgrade" in result.output
        migrate.upgrade(engine)  # leave the whole schema to the next test
    else:
        assert result.exit_code == 0  # SQLite migrates itself
        assert migrate.is_at_head(engine)
    engine.dispose()


def test_bad_configuration_names_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("NOTIFY_WEBHOOK_SECRET", "not-a-secret")
    result = runner.invoke(app, ["db", "current"])
    assert result.exit_code == 2 and "NOTIFY_WEBHOOK_SECRET" in result.output
    monkeypatch.delenv("NOTIFY_WEBHOOK_SECRET")
    monkeypatch.setenv("NOTIFY_WEBHOOK_FORMAT", "xml")
    result = runner.invoke(app, ["db", "current"])
    assert result.exit_code == 2 and "NOTIFY_WEBHOOK_FORMAT" in result.output
    monkeypatch.delenv("NOTIFY_WEBHOOK_FORMAT")
    monkeypatch.setenv("NOTIFY_WEBHOOK_EVENTS", "contract_drift.nonsense")
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2 and "NOTIFY_WEBHOOK_EVENTS" in result.output


def test_bootstrap_can_pin_the_runbooks_dev_key(database_url: str, client, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = runner.invoke(
        app, ["bootstrap", "--org-name", "Dev", "--api-key", "dev_plain_key_001"]
    )
    assert result.exit_code == 0 and "API_KEY=dev_plain_key_001" in result.stdout
    assert (
        client.get(
            "/api/v1/agents", headers={"Authorization": "Bearer dev_plain_key_001"}
        ).status_code
        == 200
    )
    again = runner.invoke(
        app, ["bootstrap", "--org-name", "Dev2", "--api-key", "dev_plain_key_001"]
    )
    assert again.exit_code == 2 and "already in use" in again.output
    assert runner.invoke(app, ["bootstrap", "--org-name", "x", "--api-key", "short"]).exit_code == 2


def test_python_dash_m_runs_the_same_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "driftwarden.cli", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage: driftwarden " in done.stdout
    listed = set(re.findall(r"│ ([a-z-]+) ", done.stdout))
    assert {
        "serve",
        "bootstrap",
        "import",
        "worker",
        "schedule-run",
        "demo",
        "db",
        "webhook",
    } <= listed


UNREACHABLE_COMMANDS = [
    ["db", "upgrade"],
    ["db", "current"],
    ["bootstrap", "--org-name", "x"],
    ["serve"],
]


@pytest.mark.parametrize("command", UNREACHABLE_COMMANDS, ids=" ".join)
def test_an_unreachable_database_is_one_line_naming_the_host_never_the_password(
    command, monkeypatch
) -> None:
    port = free_port()  # nothing listens there
    monkeypatch.setenv("DATABASE_URL", f"postgresql://dw:pw-s3cret-9@127.0.0.1:{port}/dw")
    monkeypatch.delenv("LOG_LEVEL", raising=False)
    result = runner.invoke(app, command)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert f"cannot reach the database at 127.0.0.1:{port}/dw" in lines[0]
    assert "check DATABASE_URL" in lines[0]
    assert "pw-s3cret-9" not in result.output


def test_an_unreachable_database_shows_the_traceback_at_debug(monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql://dw:pw-s3cret-9@127.0.0.1:{free_port()}/dw")
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 1 and "Traceback (most recent call last)" in result.stderr
    assert "cannot reach the database" in result.stderr.strip().splitlines()[-1]


def test_database_url_wins_over_supabase_db_url_with_a_warning(tmp_path: Path, monkeypatch) -> None:
    chosen, ignored = tmp_path / "chosen.db", tmp_path / "ignored.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{chosen}")
    monkeypatch.setenv("SUPABASE_DB_URL", f"sqlite:///{ignored}")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    warning = "DATABASE_URL and SUPABASE_DB_URL are both set and differ; using DATABASE_URL"
    assert warning in result.stderr
    assert str(chosen) not in result.stderr and str(ignored) not in result.stderr
    assert chosen.exists() and not ignored.exists()
    monkeypatch.setenv("SUPABASE_DB_URL", f"sqlite:///{chosen}")  # the same value: no warning
    assert "warning" not in runner.invoke(app, ["db", "current"]).stderr


@pytest.mark.parametrize("webhook", [None, "https://hooks.example.com/T000/secret-path"])
def test_bootstrap_can_enable_the_schedule(webhook, database_url: str, client, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    if webhook:
        monkeypatch.setenv("NOTIFY_WEBHOOK_URL", webhook)
    else:
        monkeypatch.delenv("NOTIFY_WEBHOOK_URL", raising=False)
    result = runner.invoke(app, ["bootstrap", "--org-name", "Scheduled", "--enable-schedule"])
    assert result.exit_code == 0, result.output
    key = dict(line.split("=", 1) for line in result.stdout.strip().splitlines())["API_KEY"]
    policy = client.get(
        "/api/v1/system/contracts/drift-policy", headers={"Authorization": f"Bearer {key}"}
    )
    assert policy.status_code == 200, policy.text
    assert policy.json()["data"]["enabled"] is True
    assert policy.json()["data"]["alert_enabled"] is (webhook is not None)
    assert "secret-path" not in result.output


def test_serve_log_lines_carry_a_utc_timestamp_and_the_request_id() -> None:
    """The formatter `driftwarden serve` gives uvicorn.log, built the way dictConfig builds it."""
    spec = uvicorn_log_config(Settings())["formatters"]["line"]
    formatter = logging.config.DictConfigurator({}).configure_formatter(dict(spec))
    record = logging.makeLogRecord(
        {
            "name": "driftwarden.api",
            "levelname": "ERROR",
            "levelno": 40,
            "msg": "unhandled error",
            "created": 1_764_633_600.0,
            "request_id": "a" * 32,
        }
    )
    expected = f"2025-12-02T00:00:00.000Z ERROR driftwarden.api [{'a' * 32}] unhandled error"
    assert formatter.format(record) == expected
    plain = logging.makeLogRecord(
        {"name": "uvicorn.error", "levelname": "INFO", "msg": "Started", "created": 0.0}
    )
    assert formatter.format(plain) == "1970-01-01T00:00:00.000Z INFO uvicorn.error [-] Started"
