"""Hostile input against every operation of the OpenAPI document.

Never a 5xx, always the envelope.
"""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient

from tests.production.envelope import envelope_problems
from tests.production.openapi_ops import Operation, operations

MALFORMED_BODIES = (
    b'{"',
    b"[]",
    b"null",
    b'"text"',
    b"1e999999",
    b'{"a": NaN}',
    b"\xff\xfe\x00garbage",
    b'{"name": "' + b"x" * 100_000 + b'"}',
)
KEYED_BODIES = (
    b'{"',
    b"[]",
    b"\xff\xfe\x00garbage",
)  # the idempotency middleware hashes the body first
HOSTILE_BY_TYPE = {
    "integer": ("99999999999999999999999999", "-99999999999999999999", "NaN"),
    "number": ("1e999999", "NaN"),
    "boolean": ("maybe",),
    "uuid": ("not-a-uuid", "00000000-0000-0000-0000-00000000000g"),
    "string": ("' OR 1=1 --", "%_\\", "x" * 5000, "\U0001f600\u202e"),
}


def _kind(schema: dict) -> str:
    if schema.get("format") == "uuid":
        return "uuid"
    return schema.get("type", "string")


def _problems(op: Operation, response, expected: range = range(400, 500)) -> list[str]:  # type: ignore[no-untyped-def]
    found = [] if response.status_code in expected else [f"status {response.status_code}"]
    found += envelope_problems(response.status_code, response.headers, response.content)
    return [f"{op} -> {problem}" for problem in found]


def _send(client: TestClient, op: Operation, **kwargs):  # type: ignore[no-untyped-def]
    return client.request(op.method, op.url(), **kwargs)


def _assert_none(problems: list[str]) -> None:
    assert not problems, "\n".join(problems[:40])


def test_every_operation_but_the_probes_needs_a_key(client: TestClient) -> None:
    problems: list[str] = []
    for op in operations():
        if not op.needs_key:
            continue
        body = {"json": {}} if op.has_body else {}
        for headers in ({}, {"Authorization": "Bearer dwk_" + "A" * 40}):
            response = _send(client, op, headers=headers, **body)
            problems += _problems(op, response, range(401, 402))
        legacy = client.request(
            op.method,
            op.url().replace("/api/v1/", "/api/", 1),
            **body,
            headers={"Authorization": "Basic YTpi"},
        )
        problems += _problems(op, legacy, range(401, 402))
    oversized = client.get("/api/v1/agents", headers={"Authorization": "Bearer " + "x" * 8000})
    problems += _problems(operations()[0], oversized, range(401, 402))
    _assert_none(problems)


@pytest.mark.parametrize("with_key", [False, True], ids=["plain", "idempotency-key"])
def test_malformed_json_bodies_are_rejected(client: TestClient, admin, with_key: bool) -> None:
    problems: list[str] = []
    for op in (o for o in operations() if o.has_body):
        for payload in KEYED_BODIES if with_key else MALFORMED_BODIES:
            headers = {**admin.headers, "Content-Type": "application/json"}
            if with_key:
                headers["Idempotency-Key"] = uuid.uuid4().hex
            # `null` is no body at all, which an operation with an optional body may accept.
            allowed = range(400, 500) if op.body_required or payload != b"null" else range(200, 500)
            problems += _problems(op, _send(client, op, headers=headers, content=payload), allowed)
    _assert_none(problems)


def test_hostile_query_values_are_rejected_or_harmless(client: TestClient, admin) -> None:
    problems: list[str] = []
    for op in operations():
        for name, schema in op.query.items():
            for value in HOSTILE_BY_TYPE.get(_kind(schema), HOSTILE_BY_TYPE["string"]):
                response = _send(client, op, headers=admin.headers, params={name: value})
                problems += _problems(op, response, range(200, 500))
    _assert_none(problems)


def test_hostile_path_parameters_are_rejected(client: TestClient, admin) -> None:
    problems: list[str] = []
    for op in (o for o in operations() if o.path_params):
        for value in ("not-a-uuid", "..%2F..%2Fetc%2Fpasswd", "%00", "9" * 5000):
            url = op.url(**dict.fromkeys(op.path_params, value))
            response = client.request(
                op.method, url, headers=admin.headers, json={} if op.has_body else None
            )
            problems += _problems(op, response)
    _assert_none(problems)


def test_hostile_headers_are_rejected_or_ignored(client: TestClient, admin) -> None:
    problems: list[str] = []
    for op in (o for o in operations() if o.method != "GET"):
        for key in ("k" * 256, "caf\u00e9".encode("latin-1"), ""):
            headers: dict = {**admin.headers, "Idempotency-Key": key}
            response = _send(client, op, headers=headers, json={})
            problems += _problems(op, response, range(400, 401))
    weird_id = client.get("/healthz", headers={"X-Request-Id": "a\tb\x7f"})
    assert weird_id.status_code == 200 and weird_id.headers["x-request-id"] != "a\tb\x7f"
    _assert_none(problems)


def test_deeply_nested_json_with_idempotency_key_is_rejected(client: TestClient, admin) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    problems: list[str] = []
    for op in (o for o in operations() if o.has_body):
        headers = {
            **admin.headers,
            "Content-Type": "application/json",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        problems += _problems(op, _send(client, op, headers=headers, content=deep))
    _assert_none(problems)


def test_deeply_nested_json_without_key_is_rejected(client: TestClient, admin) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    problems: list[str] = []
    for op in (o for o in operations() if o.has_body):
        headers = {**admin.headers, "Content-Type": "application/json"}
        problems += _problems(op, _send(client, op, headers=headers, content=deep))
    _assert_none(problems)


def test_deep_json_field_is_refused_before_anything_is_stored(client: TestClient, admin) -> None:
    metadata = json.loads('{"a":' * 300 + "1" + "}" * 300)
    response = client.post(
        "/api/v1/agents", headers=admin.headers, json={"name": "deep", "metadata": metadata}
    )
    _assert_none(_problems(operations()[0], response))
    listed = client.get("/api/v1/agents", headers=admin.headers).json()["data"]
    assert listed["total_count"] == 0


def test_nul_bytes_are_refused_or_stored_never_500(client: TestClient, admin) -> None:
    problems: list[str] = []
    for body in ({"name": "a\x00b"}, {"name": "ok", "metadata": {"k": "v\x00"}}):
        response = client.post("/api/v1/agents", headers=admin.headers, json=body)
        problems += _problems(operations()[0], response, range(200, 500))
    for op in (o for o in operations() if o.method == "GET"):
        for name, schema in op.query.items():
            if _kind(schema) == "string":
                response = _send(client, op, headers=admin.headers, params={name: "a\x00b"})
                problems += _problems(op, response, range(200, 500))
    _assert_none(problems)
