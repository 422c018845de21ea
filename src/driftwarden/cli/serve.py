"""`driftwarden serve`: the API under uvicorn."""

from __future__ import annotations

import logging
import time
from typing import Any

import typer

from driftwarden.cli.common import ensure_schema, load_settings

LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def log_config(level: str) -> dict[str, Any]:
    """Every line of uvicorn.log with a UTC timestamp: uvicorn's own format has none."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "stamped",
        "stream": "ext://sys.stderr",
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "stamped": {
                "()": "driftwarden.cli.serve.UtcFormatter",
                "fmt": LINE_FORMAT,
                "datefmt": "%Y-%m-%dT%H:%M:%SZ",
            }
        },
        "handlers": {"default": handler},
        "loggers": {
            name: {"handlers": ["default"], "level": level, "propagate": False}
            for name in ("uvicorn", "uvicorn.access", "driftwarden")
        },
    }


class UtcFormatter(logging.Formatter):
    """Times in UTC, as the workflow's other timestamps are; a request's id when it has one."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} request_id={request_id}" if request_id else line


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
    uvicorn.run(
        "driftwarden.api.asgi:app",
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=graceful_seconds,
        log_level=settings.log_level.lower(),
        log_config=log_config(settings.log_level.upper()),
    )
