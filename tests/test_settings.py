"""A bad secret-bearing setting is refused by its variable's name, and its value is never printed.

(docs/reference/operations.md#configuration) pydantic's own error text echoes the input
(`input_value='whsec_…'`); the commands print their own line instead.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from driftwarden.cli import app
from driftwarden.settings import Settings, describe_error

runner = CliRunner()
# (variable, a bad value carrying a secret, the secret part that must never be printed)
BAD_SECRETS = [
    ("DATABASE_URL", "mysql://admin:hunter2-db-pass@db.internal/prod", "hunter2-db-pass"),
    ("SUPABASE_DB_URL", "mysql://admin:hunter3-db-pass@db.internal/prod", "hunter3-db-pass"),
    ("NOTIFY_WEBHOOK_URL", "ftp://bot:s3cret-pw@hooks.example.com/T0/B0/tok3n-path", "tok3n-path"),
    ("NOTIFY_WEBHOOK_SECRET", "whsec_!!not-base64-but-secret-material", "not-base64-but-secret"),
    ("METRICS_TOKEN", "short-tok3n", "short-tok3n"),
    ("CONSOLE_SECRET_KEY", "too-short-console-k3y", "too-short-console-k3y"),
]
COMMANDS = [["serve"], ["worker", "--once"], ["db", "upgrade"]]


@pytest.mark.parametrize(("variable", "value", "secret"), BAD_SECRETS)
@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_bad_secret_is_refused_by_name_and_never_printed(
    command, variable, value, secret, tmp_path
) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
        "SUPABASE_DB_URL": "",
        "NOTIFY_WEBHOOK_URL": "",
        "NOTIFY_WEBHOOK_SECRET": "",
        "METRICS_TOKEN": "",
        "CONSOLE_SECRET_KEY": "",
        variable: value,
    }
    if variable == "SUPABASE_DB_URL":
        env["DATABASE_URL"] = ""
    result = runner.invoke(app, command, env=env)
    assert result.exit_code == 2, result.output
    assert variable in result.output
    assert secret not in result.output and "input_value" not in result.output


def test_the_message_names_every_bad_variable_and_no_value() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(NOTIFY_WEBHOOK_SECRET="whsec_!!secret-one", METRICS_TOKEN="secret-two")
    assert "secret-one" in str(refused.value)  # pydantic's own text does echo it...
    line = describe_error(refused.value)
    assert "NOTIFY_WEBHOOK_SECRET" in line and "METRICS_TOKEN" in line
    assert "secret-one" not in line and "secret-two" not in line  # ...ours never does


@pytest.mark.parametrize(("value", "expected"), [("", None), ("  ", None), ("0", 0), ("5", 5)])
def test_db_prepare_threshold_empty_is_unset(monkeypatch, value: str, expected) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DB_PREPARE_THRESHOLD", value)
    assert Settings().db_prepare_threshold == expected


def test_db_prepare_threshold_below_zero_is_refused_by_name(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DB_PREPARE_THRESHOLD", "-1")
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert describe_error(refused.value).startswith("DB_PREPARE_THRESHOLD:")
