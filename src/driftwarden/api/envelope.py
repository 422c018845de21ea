"""The response envelope every route speaks, and the list page shape."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    ok: Literal[True] = True
    data: T


class ErrorBody(BaseModel):
    code: str = Field(examples=["NOT_FOUND"])
    message: str
    details: Any = None


class ErrorEnvelope(BaseModel):
    ok: Literal[False] = False
    error: ErrorBody


class Page(BaseModel, Generic[T]):
    items: list[T]
    count: int
    total_count: int
    limit: int
    offset: int


def ok(data: Any) -> dict[str, Any]:
    return {"ok": True, "data": data}


def page(items: list[Any], *, total_count: int, limit: int, offset: int) -> dict[str, Any]:
    return {
        "items": items,
        "count": len(items),
        "total_count": total_count,
        "limit": limit,
        "offset": offset,
    }


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message, "details": details}}


_ERR = {"model": ErrorEnvelope}
# Documented on every operation so clients (and schemathesis) know the error shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {**_ERR, "description": "Bad request"},
    401: {**_ERR, "description": "Missing, unknown, revoked or expired API key"},
    403: {**_ERR, "description": "Role too low or another org"},
    404: {**_ERR, "description": "Not found"},
    409: {**_ERR, "description": "Conflict"},
    422: {**_ERR, "description": "Validation error"},
    500: {**_ERR, "description": "Internal error"},
}
