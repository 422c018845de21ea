"""The input guard: depth, NUL and size limits at the edge."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from driftwarden.api.app import create_app
from driftwarden.api.guard import json_depth


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"", 0),
        (b"1", 0),
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[{{{"}', 1),
        (b'["\\"]]]", [[]]]', 3),
        (b'["a\\\\", [[]], "]]"]', 3),
        (b'[["unterminated [[', 4),  # not a string, so its brackets count
        (b"[" * 50 + b"]" * 50, 50),
    ],
)
def test_json_depth_ignores_brackets_in_strings(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


def test_deep_nul_and_oversized_bodies_are_refused(
    client: TestClient, admin, settings, engine, clock
) -> None:
    deep = client.post(
        "/api/v1/agents",
        headers=admin.headers,
        json={"name": "x", "metadata": eval("{'a':" * 40 + "1" + "}" * 40)},
    )
    assert deep.status_code == 422 and "nested deeper" in deep.json()["error"]["message"]
    nul = client.post("/api/v1/agents", headers=admin.headers, json={"name": "a\x00b"})
    assert nul.status_code == 422 and nul.json()["error"]["code"] == "VALIDATION_ERROR"
    nul_query = client.get("/api/v1/agents", params={"agent_type": "a\x00"}, headers=admin.headers)
    assert nul_query.status_code == 422
    fine = client.post(
        "/api/v1/agents", headers=admin.headers, json={"name": "ok", "metadata": {"a": {"b": [1]}}}
    )
    assert fine.status_code == 201
    small = create_app(
        settings.model_copy(update={"max_request_bytes": 2048}), engine=engine, clock=clock
    )
    with TestClient(small) as small_client:
        big = small_client.post(
            "/api/v1/agents", headers=admin.headers, json={"name": "x", "description": "y" * 4096}
        )
    assert big.status_code == 413 and big.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert big.headers["x-request-id"]
