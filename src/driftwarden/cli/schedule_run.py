"""`driftwarden schedule-run`: one schedule run over HTTP, as the runbook's script makes it."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from driftwarden.cli import schedule_client as client
from driftwarden.scheduler import signals

HELP = (
    "One schedule run, as scripts/run_contract_drift_schedule.sh does it (same env vars and "
    "exit codes)."
)


def schedule_run() -> None:
    """The script's run from Python (CI without bash or curl); same variables, same exit codes."""
    try:
        config = client.config_from_env(os.environ)
    except client.InputError as exc:
        typer.echo(f"driftwarden schedule-run: {exc}", err=True)
        raise typer.Exit(client.EXIT_BAD_INPUT) from exc
    result = client.call(
        config,
        announce=lambda url, key: typer.echo(
            f"driftwarden schedule-run: POST {url} (Idempotency-Key: {key})", err=True
        ),
    )
    if result.document is not None:
        text = json.dumps(result.document)
        sys.stdout.write(text + "\n")
        if os.environ.get("OUTPUT_FILE"):
            Path(os.environ["OUTPUT_FILE"]).write_text(text)
    if result.replayed:
        typer.echo(
            "driftwarden schedule-run: replayed the first response for this key",
            err=True,
        )
    code, message = client.outcome(result, config)
    warning = (
        message
        if client.is_success(result)
        and (result.document["data"].get("trigger") or {}).get("outcome") in client.DISABLED
        else None
    )
    if client.is_success(result):
        data = result.document["data"]
        sys.stdout.write(f"signals: {signals.signal_line(data)}\n")
        _step_summary(data, message, warning)
    prefix = "warning: " if warning else ""
    typer.echo(f"driftwarden schedule-run: {prefix}{message}", err=True)
    raise typer.Exit(code)


def _step_summary(data: dict, message: str, warning: str | None) -> None:
    """Append the signals (and why nothing ran, if so) to $GITHUB_STEP_SUMMARY when it is set."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    rows = "".join(f"| `{k}` | {json.dumps(v)} |\n" for k, v in signals.signals(data).items())
    note = f"\n> [!WARNING]\n> {warning}\n" if warning else ""
    with open(path, "a", encoding="utf-8") as out:
        out.write(
            f"### Contract drift schedule run ({data.get('schedule_name')}, dry_run="
            f"{json.dumps(data.get('dry_run'))})\n\n| signal | value |\n|---|---|\n{rows}\n"
            f"Result: {message}\n{note}"
        )
