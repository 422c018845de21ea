"""Command-line verbs of the notifications domain: `worker` and `webhook verify`."""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Optional

import typer

webhook_app = typer.Typer(help="Standard Webhooks helpers.", no_args_is_help=True)


def read_headers(path: Path) -> dict[str, str]:
    """Headers saved as a JSON object, or as raw `Name: value` lines (an HTTP request head)."""
    text = path.read_text(encoding="utf-8")
    try:
        loaded = json.loads(text)
    except ValueError:
        loaded = None
    if isinstance(loaded, dict):
        return {str(k).lower(): str(v) for k, v in loaded.items()}
    headers = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() and " " not in name.strip():
            headers[name.strip().lower()] = value.strip()
    return headers


@webhook_app.command("verify")
def verify(headers_file: Path = typer.Option(..., "--headers", exists=True, dir_okay=False,
                                             help="saved headers: JSON object or `Name: value` lines"),
           body_file: Path = typer.Option(..., "--body", exists=True, dir_okay=False, help="the exact body bytes"),
           secret: Optional[str] = typer.Option(None, "--secret", envvar="NOTIFY_WEBHOOK_SECRET",
                                                help="whsec_… secret (default: $NOTIFY_WEBHOOK_SECRET)"),
           tolerance_seconds: Optional[int] = typer.Option(
               None, "--tolerance-seconds", min=1,
               help="replay window (default: $NOTIFY_WEBHOOK_SIGNATURE_TOLERANCE_SECONDS, 300)")) -> None:
    """Check a saved webhook against a secret: exit 0 when valid, 1 when not, 2 on bad input."""
    from driftwarden.cli import load_settings
    from driftwarden.notifications import signing
    from driftwarden.settings import validate_whsec

    if not secret:
        typer.echo("webhook verify: no secret (pass --secret or set NOTIFY_WEBHOOK_SECRET)", err=True)
        raise typer.Exit(2)
    try:
        validate_whsec(secret, variable="--secret")
    except ValueError as exc:
        typer.echo(f"webhook verify: {exc}", err=True)
        raise typer.Exit(2) from exc
    tolerance = tolerance_seconds or load_settings().notify_webhook_signature_tolerance_seconds
    headers = read_headers(headers_file)
    try:
        signing.verify(secret=secret, headers=headers, body=body_file.read_bytes(), tolerance_seconds=tolerance)
    except signing.WebhookVerificationError as exc:
        typer.echo(f"INVALID: {exc} (webhook-id {headers.get('webhook-id', '?')})")
        raise typer.Exit(1) from exc
    typer.echo(f"VALID: signature matches for webhook-id {headers.get('webhook-id')} "
               f"(timestamp {headers.get('webhook-timestamp')}, tolerance {tolerance}s)")


def worker(concurrency: int = typer.Option(8, min=1, max=256, help="deliveries in flight at once"),
           poll_interval: float = typer.Option(1.0, min=0.01, max=60, help="seconds between polls when idle"),
           once: bool = typer.Option(False, "--once", help="drain until nothing is due, then exit"),
           lease_seconds: Optional[float] = typer.Option(
               None, min=1, help="how long a claimed message stays ours (default: max(60, 2×timeout+10))"),
           shutdown_grace: Optional[float] = typer.Option(
               None, min=0, help="on SIGTERM, how long in-flight attempts may finish (default: timeout+5)"),
           schedule: bool = typer.Option(
               False, "--schedule", help="also run every enabled org's drift schedule as each window opens")) -> None:
    """Drain the outbox, watch the drift schedules; SIGTERM finishes or releases what it holds."""
    from driftwarden.cli import ensure_schema, load_settings
    from driftwarden.clock import SystemClock
    from driftwarden.db.engine import make_engine, make_session_factory
    from driftwarden.notifications import delivery
    from driftwarden.notifications.worker import (
        Worker, WorkerConfig, check_destination_settings, periodic_jobs,
    )

    settings = load_settings()
    problems = check_destination_settings(settings)
    if problems:
        typer.echo("driftwarden worker: invalid configuration:\n  " + "\n  ".join(problems), err=True)
        raise typer.Exit(2)
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr, format="%(message)s")
    # httpx logs every request's full URL at INFO: a webhook URL's path or user:password can be its credential.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    ensure_schema(settings)
    engine = make_engine(settings)
    config = WorkerConfig(concurrency=concurrency, poll_interval=poll_interval, once=once,
                          lease_seconds=lease_seconds or delivery.lease_seconds_for(settings),
                          shutdown_grace=settings.notify_webhook_timeout_seconds + 5
                          if shutdown_grace is None else shutdown_grace)
    session_factory, clock = make_session_factory(engine), SystemClock()
    runner = Worker(session_factory, settings, clock, config,
                    periodic=periodic_jobs(session_factory, settings, clock, schedule=schedule))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: runner.stop.set())
    stats = runner.run()
    engine.dispose()
    logging.getLogger("driftwarden.notifications.worker").info(json.dumps({"event": "worker_stopped", **vars(stats)}))


def register(app: typer.Typer) -> None:
    """Add this domain's commands to `app`, and its housekeeping to `driftwarden worker`."""
    from driftwarden.notifications import housekeeping
    from driftwarden.notifications.worker import register_periodic

    app.command("worker")(worker)
    app.add_typer(webhook_app, name="webhook")
    register_periodic(housekeeping.periodic)
