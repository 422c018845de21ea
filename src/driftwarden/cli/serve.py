"""`driftwarden serve`: the API under uvicorn."""

from __future__ import annotations

import typer

from driftwarden.cli.common import ensure_schema, load_settings
from driftwarden.logs import configure_logging, uvicorn_log_config
from driftwarden.metrics.exposition import prepare_multiprocess_dir


def serve(
    host: str = "127.0.0.1",
    port: int = 8001,
    workers: int = typer.Option(1, min=1, max=32, help="uvicorn worker processes"),
    graceful_seconds: int = typer.Option(
        30, help="how long in-flight requests may finish on SIGTERM"
    ),
) -> None:
    """Serve the API with uvicorn. SQLite is migrated on start; Postgres must already be current."""
    import uvicorn  # only this command needs it; keeps `driftwarden --help` quick

    settings = load_settings(check_destinations=True)
    ensure_schema(settings)
    configure_logging(settings)  # only once the server will really start
    if workers > 1:  # every worker counts into one directory; a scrape of any of them sums them
        prepare_multiprocess_dir()
    uvicorn.run(
        "driftwarden.api.asgi:app",
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=graceful_seconds,
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(settings),
    )
