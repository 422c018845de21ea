"""docs/reference/api.md#audit-log: one audit row per mutating request, filterable."""

from __future__ import annotations

from fastapi.testclient import TestClient

from driftwarden.auth import keys


def test_mutations_are_audited_with_request_id_and_replay(client: TestClient, admin) -> None:
    headers = {**admin.headers, "Idempotency-Key": "audit-1", "X-Request-Id": "req-audit-1"}
    client.post("/api/v1/agents", headers=headers, json={"name": "a"})
    client.post(
        "/api/v1/agents", headers={**headers, "X-Request-Id": "req-audit-2"}, json={"name": "a"}
    )
    client.post(
        "/api/v1/agents",
        headers={**admin.headers, "X-Request-Id": "req-audit-3"},
        json={"name": ""},
    )
    client.get("/api/v1/agents", headers=admin.headers)

    logs = client.get("/api/v1/system/audit-logs", headers=admin.headers).json()["data"]
    assert logs["total_count"] == 3  # the GET is not audited
    first = client.get(
        "/api/v1/system/audit-logs", params={"request_id": "req-audit-1"}, headers=admin.headers
    ).json()["data"]["items"][0]
    assert (
        first["method"] == "POST"
        and first["path"] == "/api/v1/agents"
        and first["status_code"] == 201
    )
    assert first["api_key_id"] == str(admin.api_key_id) and first["org_id"] == str(admin.org_id)
    assert first["idempotency_key"] == "audit-1" and first["idempotent_replayed"] is False
    assert first["latency_ms"] >= 0
    replay = client.get(
        "/api/v1/system/audit-logs", params={"request_id": "req-audit-2"}, headers=admin.headers
    ).json()["data"]["items"][0]
    assert replay["idempotent_replayed"] is True
    failed = client.get(
        "/api/v1/system/audit-logs",
        params={"error_code": "VALIDATION_ERROR"},
        headers=admin.headers,
    ).json()["data"]["items"]
    assert [f["request_id"] for f in failed] == ["req-audit-3"] and failed[0]["status_code"] == 422
    by_filters = client.get(
        "/api/v1/system/audit-logs",
        headers=admin.headers,
        params={"path": "agents", "method": "post", "status_code": 201},
    ).json()["data"]
    assert by_filters["total_count"] == 2


def test_unauthenticated_mutations_are_audited_too(client: TestClient, admin) -> None:
    client.post("/api/v1/agents", json={"name": "x"}, headers={"X-Request-Id": "anon-1"})
    rows = client.get(
        "/api/v1/system/audit-logs", params={"request_id": "anon-1"}, headers=admin.headers
    ).json()["data"]["items"]
    # An org admin only sees its own org's rows; an anonymous call belongs to no org.
    assert rows == []


def _audit_rows(client: TestClient, admin, request_id: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return client.get(
        "/api/v1/system/audit-logs", params={"request_id": request_id}, headers=admin.headers
    ).json()["data"]["items"]


def test_a_500_during_key_lookup_is_audited_under_the_org_it_named(
    client: TestClient, admin, monkeypatch
) -> None:
    def broken_lookup(*args: object, **kwargs: object) -> None:
        raise RuntimeError("key lookup failed")

    with monkeypatch.context() as patched:
        patched.setattr(keys, "identify", broken_lookup)
        in_body = client.post(
            "/api/v1/agents",
            headers={**admin.headers, "X-Request-Id": "lookup-body"},
            json={"name": "x", "org_id": str(admin.org_id)},
        )
        in_query = client.post(
            f"/api/v1/agents?org_id={admin.org_id}",
            json={"name": "x"},
            headers={**admin.headers, "X-Request-Id": "lookup-query"},
        )
        not_uuid = client.post(
            "/api/v1/agents",
            json={"name": "x", "org_id": "not-a-uuid"},
            headers={**admin.headers, "X-Request-Id": "lookup-bad"},
        )
    assert in_body.status_code == in_query.status_code == not_uuid.status_code == 500
    for request_id in ("lookup-body", "lookup-query"):
        [row] = _audit_rows(client, admin, request_id)
        assert row["org_id"] == str(admin.org_id) and row["api_key_id"] is None
        assert row["status_code"] == 500 and row["error_code"] == "INTERNAL_ERROR"
    assert _audit_rows(client, admin, "lookup-bad") == []  # null org: not the org admin's to see


def test_an_unknown_key_naming_an_org_in_the_query_is_audited_there(
    client: TestClient, admin
) -> None:
    client.post(
        f"/api/v1/agents?org_id={admin.org_id}",
        json={"name": "x"},
        headers={"Authorization": "Bearer dwk_unknown", "X-Request-Id": "anon-org"},
    )
    [row] = _audit_rows(client, admin, "anon-org")
    assert row["status_code"] == 401 and row["org_id"] == str(admin.org_id)
