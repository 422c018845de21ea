"""Errors as envelopes: domain errors get their status code here, and nowhere else."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from driftwarden import errors
from driftwarden.api.envelope import error_body

log = logging.getLogger("driftwarden.api")

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}

# Class → status (docs/reference/api.md, errors); the most specific class in an MRO wins.
STATUS_BY_CLASS: dict[type[errors.DomainError], int] = {
    errors.Invalid: 422,
    errors.BadRequest: 400,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Unavailable: 503,
}


def status_of(exc: errors.DomainError) -> int:
    """The status of the nearest mapped class; an unmapped DomainError is the server's fault."""
    return next((STATUS_BY_CLASS[cls] for cls in type(exc).__mro__ if cls in STATUS_BY_CLASS), 500)


def domain_error_headers(exc: errors.DomainError) -> dict[str, str] | None:
    """What the status code promises the client: a challenge for 401, a wait for 503."""
    if isinstance(exc, errors.Unauthenticated):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, errors.Unavailable) and exc.retry_after_seconds is not None:
        return {"Retry-After": str(exc.retry_after_seconds)}
    return None


def allowed_methods(scope: Scope) -> list[str]:
    """Methods some route fully matches at this path (for 405's Allow header)."""
    routes = scope["app"].router.routes
    return [
        method
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)
    ]


def _clean_validation_errors(problems: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Echo where and why, never the submitted value (it may be a secret).
    return [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in problems
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.DomainError)
    async def _domain_error(_: Request, exc: errors.DomainError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details),
            status_code=status_of(exc),
            headers=domain_error_headers(exc),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.scope))
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=headers or None
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = _clean_validation_errors(list(exc.errors()))
        return JSONResponse(
            error_body("VALIDATION_ERROR", "request validation failed", details), status_code=422
        )
