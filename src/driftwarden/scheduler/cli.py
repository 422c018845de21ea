"""Command-line verbs of the scheduler domain: `schedule-run` and `demo`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from driftwarden.notifications.worker import register_periodic
from driftwarden.scheduler import autorun, client, watchdog


def schedule_run() -> None:
    """One schedule run, as scripts/run_contract_drift_schedule.sh does it (same env vars and exit codes)."""
    try:
        config = client.config_from_env(os.environ)
    except client.InputError as exc:
        typer.echo(f"driftwarden schedule-run: {exc}", err=True)
        raise typer.Exit(client.EXIT_BAD_INPUT) from exc
    result = client.call(config, announce=lambda url, key: typer.echo(
        f"driftwarden schedule-run: POST {url} (Idempotency-Key: {key})", err=True))
    if result.document is not None:
        text = json.dumps(result.document)
        sys.stdout.write(text + "\n")
        if os.environ.get("OUTPUT_FILE"):
            Path(os.environ["OUTPUT_FILE"]).write_text(text)
    if result.replayed:
        typer.echo("driftwarden schedule-run: replayed the first response for this key", err=True)
    code, message = client.outcome(result)
    if client.is_success(result):
        data = result.document["data"]
        sys.stdout.write(f"signals: {client.signal_line(data)}\n")
        _step_summary(data, message)
    typer.echo(f"driftwarden schedule-run: {message}", err=True)
    raise typer.Exit(code)


def _step_summary(data: dict, message: str) -> None:
    """Append the signals to $GITHUB_STEP_SUMMARY when it is set."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    rows = "".join(f"| `{k}` | {json.dumps(v)} |\n" for k, v in client.signals(data).items())
    with open(path, "a", encoding="utf-8") as out:
        out.write(f"### Contract drift schedule run ({data.get('schedule_name')}, dry_run="
                  f"{json.dumps(data.get('dry_run'))})\n\n| signal | value |\n|---|---|\n{rows}\nResult: {message}\n")


def demo(db: Path | None = typer.Option(None, help="SQLite file to use; default: a fresh one in a temp dir"),
         keep: bool = typer.Option(False, help="keep the temp dir (database) after the demo")) -> None:
    """The main job in one command: demo org with drift, the API, one real schedule run, its signals."""
    from driftwarden.scheduler import demo as demo_module

    raise typer.Exit(demo_module.run(db=db, keep=keep))


def register(app: typer.Typer) -> None:
    """Add this domain's commands to `app`, and its jobs to `driftwarden worker`."""
    app.command("schedule-run")(schedule_run)
    app.command("demo")(demo)
    register_periodic(watchdog.periodic)
    register_periodic(autorun.periodic, schedule_only=True)
