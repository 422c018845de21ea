"""`driftwarden worker`: drain the outbox and run the periodic jobs until SIGTERM."""

from __future__ import annotations

import json
import logging
import signal

import typer

from driftwarden.cli.common import ensure_schema, fail, load_settings
from driftwarden.clock import SystemClock
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.logs import configure_logging
from driftwarden.metrics.server import start_metrics_server
from driftwarden.notifications import delivery
from driftwarden.notifications.outbox import check_destination_settings
from driftwarden.worker import jobs
from driftwarden.worker.runner import Worker, WorkerConfig


def worker(
    concurrency: int = typer.Option(8, min=1, max=256, help="deliveries in flight at once"),
    poll_interval: float = typer.Option(
        1.0, min=0.01, max=60, help="seconds between polls when idle"
    ),
    once: bool = typer.Option(False, "--once", help="drain until nothing is due, then exit"),
    lease_seconds: float | None = typer.Option(
        None, min=1, help="how long a claimed message stays ours (default: max(60, 2×timeout+10))"
    ),
    shutdown_grace: float | None = typer.Option(
        None, min=0, help="on SIGTERM, how long in-flight attempts may finish (default: timeout+5)"
    ),
    schedule: bool = typer.Option(
        False, "--schedule", help="also run every enabled org's drift schedule as each window opens"
    ),
    metrics_port: int | None = typer.Option(
        None, min=1, max=65535, help="serve GET /metrics on this port (METRICS_TOKEN or admin key)"
    ),
    metrics_host: str = typer.Option("127.0.0.1", help="address the metrics port listens on"),
) -> None:
    """Drain the outbox, watch the drift schedules; SIGTERM finishes or releases what it holds."""
    settings = load_settings()
    problems = check_destination_settings(settings)
    if problems:
        fail("driftwarden worker: invalid configuration:\n  " + "\n  ".join(problems))
    configure_logging(settings)
    ensure_schema(settings)
    engine = make_engine(settings)
    grace = (
        settings.notify_webhook_timeout_seconds + 5 if shutdown_grace is None else shutdown_grace
    )
    config = WorkerConfig(
        concurrency=concurrency,
        poll_interval=poll_interval,
        once=once,
        lease_seconds=lease_seconds or delivery.lease_seconds_for(settings),
        shutdown_grace=grace,
    )
    session_factory, clock = make_session_factory(engine), SystemClock()
    runner = Worker(
        session_factory,
        settings,
        clock,
        config,
        periodic=jobs.build(session_factory, settings, clock, schedule=schedule),
    )
    metrics_server = (
        None
        if metrics_port is None
        else start_metrics_server(
            metrics_port,
            session_factory=session_factory,
            settings=settings,
            clock=clock,
            host=metrics_host,
        )
    )
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: runner.stop.set())
    stats = runner.run()
    if metrics_server is not None:
        metrics_server.shutdown()
    engine.dispose()
    logging.getLogger("driftwarden.worker").info(
        json.dumps({"event": "worker_stopped", **vars(stats)})
    )
