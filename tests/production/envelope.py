"""What every driftwarden response must look like, as one check the tests and the fuzzer share.

docs/reference/api.md
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

NO_BODY = frozenset({204, 304})


def _header(headers: Mapping[str, Any], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else value
    return None


def _error_problems(body: Any) -> list[str]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(body, dict) or body.get("ok") is not False or not isinstance(error, dict):
        return ["error response is not {ok: false, error: {...}}"]
    problems = []
    if not isinstance(error.get("code"), str) or not error["code"].isupper():
        problems.append(f"error.code {error.get('code')!r} is not an UPPER_SNAKE string")
    if not isinstance(error.get("message"), str):
        problems.append("error.message is not a string")
    if "details" not in error:
        problems.append("error.details is missing")
    return problems


def envelope_problems(status: int, headers: Mapping[str, Any], content: bytes) -> list[str]:
    """Everything wrong with one response; empty when it follows the conventions."""
    problems = []
    if not _header(headers, "x-request-id"):
        problems.append("no X-Request-Id header")
    if _header(headers, "x-api-version") != "v1":
        problems.append("X-API-Version is not v1")
    if b"Traceback (most recent call last)" in content:
        problems.append("a stack trace leaked into the response")
    if status in NO_BODY:
        return problems
    try:
        body = json.loads(content)
    except ValueError:
        return problems + [f"{status} body is not JSON"]
    if status >= 400:
        return problems + _error_problems(body)
    if not isinstance(body, dict) or body.get("ok") is not True or "data" not in body:
        problems.append("success response is not {ok: true, data: ...}")
    return problems
