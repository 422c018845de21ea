"""Domain errors: what went wrong, in the product's words, with no framework attached.

Services raise these; `driftwarden.api.errors` alone turns each class into a status code and the
error envelope, and the CLI and console render them their own way.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the caller can act on.

    A stable `code`, a one-line `message`, optional `details`.
    """

    code = "DOMAIN_ERROR"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code


class Invalid(DomainError):
    """The request is well-formed but its values break a rule (HTTP 422)."""

    code = "VALIDATION_ERROR"

    @classmethod
    def for_field(cls, field: str, problem: str) -> Invalid:
        """`<field> <problem>`, located in the body as request validation locates its errors."""
        return cls(
            f"{field} {problem}",
            details=[{"loc": ["body", field], "msg": problem, "type": "value_error"}],
        )


class BadRequest(DomainError):
    """The request lacks something it must carry (HTTP 400)."""

    code = "BAD_REQUEST"


class Unauthenticated(DomainError):
    """No valid credential (HTTP 401)."""

    code = "UNAUTHORIZED"


class Forbidden(DomainError):
    """The caller is known but may not do this (HTTP 403)."""

    code = "FORBIDDEN"


class NotFound(DomainError):
    """The thing named does not exist, or not for this caller (HTTP 404)."""

    code = "NOT_FOUND"


class Conflict(DomainError):
    """The current state forbids it: a duplicate, a transition, a race lost (HTTP 409)."""

    code = "CONFLICT"


class Unavailable(DomainError):
    """A dependency is down or saturated; retrying later may succeed (HTTP 503)."""

    code = "SERVICE_UNAVAILABLE"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        retry_after_seconds: int | None = None,
    ) -> None:
        super().__init__(message, code=code, details=details)
        self.retry_after_seconds = retry_after_seconds
