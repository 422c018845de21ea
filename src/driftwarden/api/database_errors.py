"""A saturated or unreachable database is answered 503 with Retry-After, never 500.

Neither is the client's fault nor a bug in the request, and both pass: the client retries with
the same Idempotency-Key (docs/reference/api.md, overload; docs/reference/operations.md, outages).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import exc as sa_exc
from starlette.types import Send

from driftwarden.api.envelope import error_body

log = logging.getLogger("driftwarden.api")

OVERLOADED_RETRY_AFTER_SECONDS = 1
UNAVAILABLE_RETRY_AFTER_SECONDS = 5
# SQLite's single writer lock is its "pool": waiting past busy_timeout is overload, not an outage.
_SQLITE_BUSY = ("database is locked", "database table is locked")


@dataclass(frozen=True)
class Outage:
    """The 503 a database error becomes."""

    code: str
    message: str
    retry_after_seconds: int

    def body(self, request_id: str | None) -> bytes:
        details = {"request_id": request_id} if request_id else None
        return json.dumps(error_body(self.code, self.message, details)).encode()

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


OVERLOADED = Outage(
    "SERVICE_OVERLOADED",
    "no database connection was free in time; retry later",
    OVERLOADED_RETRY_AFTER_SECONDS,
)
UNAVAILABLE = Outage(
    "DATABASE_UNAVAILABLE",
    "the database is unavailable; retry later",
    UNAVAILABLE_RETRY_AFTER_SECONDS,
)


def classify(error: BaseException) -> Outage | None:
    """The 503 for a pool timeout or a lost/refused connection; None for anything else."""
    if isinstance(error, sa_exc.TimeoutError):
        return OVERLOADED
    if isinstance(error, sa_exc.OperationalError) and any(
        busy in str(error.orig) for busy in _SQLITE_BUSY
    ):
        return OVERLOADED
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return UNAVAILABLE
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return UNAVAILABLE
    return None


def log_outage(outage: Outage, error: BaseException, request_id: str | None) -> None:
    # The class name only: a driver's message may quote SQL, and hide_parameters keeps values out.
    log.warning(
        "database %s: %s", outage.code, type(error).__name__, extra={"request_id": request_id}
    )


async def send_outage(send: Send, outage: Outage, request_id: str | None) -> None:
    """The 503 envelope as raw ASGI messages, for errors raised outside the routes."""
    body = outage.body(request_id)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(outage.retry_after_seconds).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install_database_error_handlers(app: FastAPI) -> None:
    """Errors raised inside a route (its queries) become the 503 envelope there."""

    async def _database_error(request: Request, error: Exception) -> Response:
        outage = classify(error) or UNAVAILABLE
        request_id = getattr(request.state, "request_id", None)
        request.state.database_outage = True  # the audit row waits until the 503 is out
        log_outage(outage, error, request_id)
        return Response(
            outage.body(request_id),
            status_code=503,
            headers=outage.headers(),
            media_type="application/json",
        )

    for error_class in (sa_exc.TimeoutError, sa_exc.OperationalError, sa_exc.InterfaceError):
        app.add_exception_handler(error_class, _database_error)
