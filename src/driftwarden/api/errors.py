"""Errors as envelopes: one exception type for the domain, handlers for the framework's."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import Scope

from driftwarden import errors as domain_errors
from driftwarden.api.envelope import error_body

log = logging.getLogger("driftwarden.api")

_HTTP_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR", 429: "TOO_MANY_REQUESTS", 503: "SERVICE_UNAVAILABLE",
}


class ApiError(Exception):
    """Raised by services and routes; rendered as the error envelope."""

    def __init__(self, status_code: int, code: str, message: str, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers


def insert_or_conflict(session: Session, row: object, *, code: str, message: str, details: Any = None) -> None:
    """Add and flush `row`; a unique-index violation becomes 409 `code` and leaves the session usable."""
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise ApiError(409, code, message, details) from exc


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what.upper().replace(' ', '_')}_NOT_FOUND", f"{what} not found")


def validation_error(message: str, details: Any = None) -> ApiError:
    return ApiError(422, "VALIDATION_ERROR", message, details)


def allowed_methods(scope: Scope) -> list[str]:
    """Methods some route fully matches at this path (for 405's Allow header)."""
    routes = scope["app"].router.routes
    return [method for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
            if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in routes)]


def _clean_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Echo where and why, never the submitted value (it may be a secret).
    return [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in errors]


# Domain error class -> HTTP status (docs/reference/api.md, errors).
DOMAIN_STATUS = {domain_errors.Invalid: 422, domain_errors.BadRequest: 400,
                 domain_errors.Unauthenticated: 401, domain_errors.Forbidden: 403,
                 domain_errors.NotFound: 404, domain_errors.Conflict: 409,
                 domain_errors.Unavailable: 503}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(domain_errors.DomainError)
    async def _domain_error(_: Request, exc: domain_errors.DomainError) -> JSONResponse:
        status = next((s for cls, s in DOMAIN_STATUS.items() if isinstance(exc, cls)), 500)
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.scope))
        return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = _clean_validation_errors(list(exc.errors()))
        return JSONResponse(error_body("VALIDATION_ERROR", "request validation failed", details), status_code=422)
