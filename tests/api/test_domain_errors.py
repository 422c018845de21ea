"""Each domain error class reaches the client as its documented status, headers and envelope."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from driftwarden import errors
from driftwarden.api.errors import install_error_handlers

# (error raised by a service, status, headers the client must see) — docs/reference/api.md, errors.
CASES = [
    (errors.Invalid("x must be positive", details=[{"loc": ["body", "x"]}]), 422, {}),
    (errors.BadRequest("send a key", code="IDEMPOTENCY_KEY_REQUIRED"), 400, {}),
    (errors.Unauthenticated("a valid API key is required"), 401, {"www-authenticate": "Bearer"}),
    (errors.Forbidden("admins only", details={"required_role": "admin"}), 403, {}),
    (errors.NotFound("agent not found", code="AGENT_NOT_FOUND"), 404, {}),
    (errors.Conflict("taken", code="AGENT_EXTERNAL_ID_EXISTS"), 409, {}),
    (errors.Unavailable("database is busy", retry_after_seconds=2), 503, {"retry-after": "2"}),
    (errors.Unavailable("database is busy", code="DATABASE_UNREACHABLE"), 503, {}),
]


def _client(exc: errors.DomainError) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise exc

    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize(("exc", "status", "headers"), CASES, ids=lambda c: type(c).__name__)
def test_domain_error_becomes_envelope(exc: errors.DomainError, status: int, headers: dict) -> None:
    response = _client(exc).get("/boom")
    assert response.status_code == status
    assert response.json() == {
        "ok": False,
        "error": {"code": exc.code, "message": exc.message, "details": exc.details},
    }
    for name, value in headers.items():
        assert response.headers[name] == value
    if "retry-after" not in headers:
        assert "retry-after" not in response.headers


def test_default_codes_are_the_documented_ones() -> None:
    codes = {
        cls.__name__: cls("m").code
        for cls in (
            errors.Invalid,
            errors.BadRequest,
            errors.Unauthenticated,
            errors.Forbidden,
            errors.NotFound,
            errors.Conflict,
            errors.Unavailable,
        )
    }
    assert codes == {
        "Invalid": "VALIDATION_ERROR",
        "BadRequest": "BAD_REQUEST",
        "Unauthenticated": "UNAUTHORIZED",
        "Forbidden": "FORBIDDEN",
        "NotFound": "NOT_FOUND",
        "Conflict": "CONFLICT",
        "Unavailable": "SERVICE_UNAVAILABLE",
    }


def test_a_subclass_takes_its_parents_status() -> None:
    class PatternGone(errors.NotFound):
        code = "PATTERN_GONE"

    response = _client(PatternGone("gone")).get("/boom")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "PATTERN_GONE")
