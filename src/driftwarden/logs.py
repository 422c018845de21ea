"""Log lines: text with timestamps, or one JSON object a line (docs/reference/operations.md, logs).

Everything goes through the standard `logging` module; JSON is written by python-json-logger. A
context variable holds the current request's id (and, once the response starts, its route,
status and duration), and a filter puts them on every record logged while that request runs,
uvicorn's access lines included.
"""

from __future__ import annotations

import logging
import logging.config
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from driftwarden.settings import Settings

_REQUEST: ContextVar[dict[str, Any] | None] = ContextVar("driftwarden_request", default=None)
REQUEST_FIELDS = ("request_id", "org_id", "route", "status", "duration_ms")
JSON_FIELDS = ("asctime", "levelname", "name", "message", "request_id")
JSON_NAMES = {"asctime": "ts", "levelname": "level", "name": "logger", "message": "msg"}
# httpx logs every request's full URL at INFO, and a webhook URL's path may be a token.
SILENCED = {name: {"level": "WARNING"} for name in ("httpx", "httpcore")}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def begin_request(request_id: str) -> Token:
    """Called by the request middleware when a request starts; pass the token to `end_request`."""
    return _REQUEST.set({"request_id": request_id})


def end_request(token: Token) -> None:
    _REQUEST.reset(token)


def bind(**fields: Any) -> None:
    """Add what became known about the current request (route, status, …); None is ignored."""
    current = _REQUEST.get()
    if current is not None:
        current.update({k: v for k, v in fields.items() if v is not None})


def current_request_id() -> str | None:
    current = _REQUEST.get()
    return current.get("request_id") if current else None


def _utc(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RequestContextFilter(logging.Filter):
    """Puts the current request's fields on the record; strips query strings from access lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = _REQUEST.get() or {}
        for name in REQUEST_FIELDS:
            if getattr(record, name, None) is None and (name == "request_id" or name in current):
                setattr(record, name, current.get(name))
        if (
            record.name == "uvicorn.access"
            and isinstance(record.args, tuple)
            and len(record.args) == 5
        ):
            client, method, path, version, status = record.args  # a query string may carry a token
            record.args = (client, method, str(path).split("?", 1)[0], version, status)
        return True


class TextFormatter(logging.Formatter):
    """`ts level logger [request_id] msg`, in UTC."""

    def formatTime(  # noqa: N802 - logging.Formatter's method name
        self, record: logging.LogRecord, datefmt: str | None = None
    ) -> str:
        return _utc(record)

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "request_id", None) is None:
            record.request_id = "-"
        return super().format(record)


class JsonLineFormatter(JsonFormatter):
    """`ts, level, logger, msg, request_id`; where known `org_id, route, status, duration_ms`."""

    def __init__(self) -> None:
        super().__init__(list(JSON_FIELDS), rename_fields=JSON_NAMES, json_ensure_ascii=False)

    def formatTime(  # noqa: N802 - logging.Formatter's method name
        self, record: logging.LogRecord, datefmt: str | None = None
    ) -> str:
        return _utc(record)


def logging_config(settings: Settings) -> dict[str, Any]:
    """One dictConfig for the app, the worker and uvicorn (pass it as uvicorn's `log_config`)."""
    level = settings.log_level.upper()
    formatter = "driftwarden.logs.JsonLineFormatter" if settings.log_format == "json" else None
    formatters = (
        {"line": {"()": formatter}}
        if formatter
        else {"line": {"()": "driftwarden.logs.TextFormatter", "format": TEXT_FORMAT}}
    )
    handler = {
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
        "formatter": "line",
        "filters": ["request"],
    }
    quiet = {"handlers": ["default"], "level": level, "propagate": False}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request": {"()": "driftwarden.logs.RequestContextFilter"}},
        "formatters": formatters,
        "handlers": {"default": handler},
        "loggers": {
            "uvicorn": quiet,
            "uvicorn.access": quiet,
            "uvicorn.error": {"level": level},
            "driftwarden": {"level": level},
            **SILENCED,
        },
        "root": {"handlers": ["default"], "level": level},
    }


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn applies it in every worker, so its access and error lines share the format."""
    return logging_config(settings)


def configure_logging(settings: Settings) -> None:
    """For processes uvicorn does not configure: the worker and the other CLI commands."""
    logging.config.dictConfig(logging_config(settings))
