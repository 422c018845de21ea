"""The envelope rule the hostile-input tests and the fuzzer share must catch what it claims to."""

from __future__ import annotations

import json

from tests.production.envelope import envelope_problems

HEADERS = {"X-Request-Id": "r1", "X-API-Version": "v1"}


def _body(value: object) -> bytes:
    return json.dumps(value).encode()


def test_conforming_responses_pass() -> None:
    assert envelope_problems(200, HEADERS, _body({"ok": True, "data": {"a": 1}})) == []
    assert (
        envelope_problems(
            404,
            {"x-request-id": ["r"], "x-api-version": ["v1"]},
            _body(
                {
                    "ok": False,
                    "error": {
                        "code": "AGENT_NOT_FOUND",
                        "message": "agent not found",
                        "details": None,
                    },
                }
            ),
        )
        == []
    )
    assert envelope_problems(204, HEADERS, b"") == []


def test_each_violation_is_named() -> None:
    assert envelope_problems(200, {}, _body({"ok": True, "data": 1})) == [
        "no X-Request-Id header",
        "X-API-Version is not v1",
    ]
    assert envelope_problems(200, HEADERS, _body({"a": 1})) == [
        "success response is not {ok: true, data: ...}"
    ]
    assert envelope_problems(422, HEADERS, _body({"detail": "x"})) == [
        "error response is not {ok: false, error: {...}}"
    ]
    assert envelope_problems(500, HEADERS, b"Internal Server Error") == ["500 body is not JSON"]
    assert envelope_problems(
        400, HEADERS, _body({"ok": False, "error": {"code": "bad", "message": 1}})
    ) == [
        "error.code 'bad' is not an UPPER_SNAKE string",
        "error.message is not a string",
        "error.details is missing",
    ]
    leaked = _body(
        {
            "ok": False,
            "error": {"code": "X", "message": "Traceback (most recent call last)", "details": None},
        }
    )
    assert envelope_problems(500, HEADERS, leaked) == ["a stack trace leaked into the response"]
