"""§6.2: the foundation's CLI verbs."""

from __future__ import annotations

import re

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from driftwarden.cli import app
from driftwarden.db import migrate
from tests.support import ON_POSTGRES

runner = CliRunner()


def test_bootstrap_prints_eval_lines_and_the_key_works(database_url: str, client, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = runner.invoke(app, ["bootstrap", "--org-name", "Acme"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split("=", 1) for line in result.stdout.strip().splitlines())
    assert set(lines) == {"ORG_ID", "API_KEY"} and re.fullmatch(r"dwk_[\w-]{40}", lines["API_KEY"])
    agents = client.get("/api/v1/agents", headers={"Authorization": f"Bearer {lines['API_KEY']}"})
    assert agents.status_code == 200
    org = client.get(f"/api/v1/system/orgs/{lines['ORG_ID']}", headers={"Authorization": f"Bearer {lines['API_KEY']}"})
    assert org.json()["data"]["name"] == "Acme"


def test_global_bootstrap_key_needs_org_id(database_url: str, client, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    result = runner.invoke(app, ["bootstrap", "--org-name", "Platform", "--global"])
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
    if ON_POSTGRES:  # only the recorded revision moves: later tests keep every table
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    else:  # SQLite migrates itself forward, so it must really be behind (0003 creates a table)
        migrate.downgrade(engine, "0002")
    result = runner.invoke(app, ["bootstrap", "--org-name", "x"])
    if ON_POSTGRES:
        assert result.exit_code == 1 and "driftwarden db upgrade" in result.output
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
    result = runner.invoke(app, ["bootstrap", "--org-name", "Dev", "--api-key", "dev_plain_key_001"])
    assert result.exit_code == 0 and "API_KEY=dev_plain_key_001" in result.stdout
    assert client.get("/api/v1/agents", headers={"Authorization": "Bearer dev_plain_key_001"}).status_code == 200
    again = runner.invoke(app, ["bootstrap", "--org-name", "Dev2", "--api-key", "dev_plain_key_001"])
    assert again.exit_code == 2 and "already in use" in again.output
    assert runner.invoke(app, ["bootstrap", "--org-name", "x", "--api-key", "short"]).exit_code == 2
