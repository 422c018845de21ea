"""docs/reference/api.md: prefixes, envelope, request ids, auth errors, health, OpenAPI."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import text

from driftwarden.api.app import create_app
from tests.support import make_tenant


def test_canonical_and_legacy_prefixes(client: TestClient, admin) -> None:
    canonical = client.get("/api/v1/agents", headers=admin.headers)
    legacy = client.get("/api/agents", headers=admin.headers)
    assert canonical.status_code == legacy.status_code == 200
    assert canonical.headers["x-api-version"] == legacy.headers["x-api-version"] == "v1"
    assert "deprecation" not in canonical.headers
    assert legacy.headers["deprecation"] == "true"
    assert canonical.json()["data"] == legacy.json()["data"]


def test_envelope_on_404_405_422_401(client: TestClient, admin) -> None:
    missing = client.get("/api/v1/nope", headers=admin.headers)
    assert missing.status_code == 404 and missing.json() == {
        "ok": False,
        "error": {"code": "NOT_FOUND", "message": "Not Found", "details": None},
    }
    wrong_method = client.delete("/api/v1/agents", headers=admin.headers)
    assert (
        wrong_method.status_code == 405
        and wrong_method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    )
    assert wrong_method.headers["allow"] == "GET, POST"
    keyed = client.put("/api/v1/agents", headers={**admin.headers, "Idempotency-Key": "\x01bad"})
    assert keyed.status_code == 405
    invalid = client.post("/api/v1/agents", headers=admin.headers, json={"name": ""})
    assert invalid.status_code == 422
    assert invalid.json()["error"]["code"] == "VALIDATION_ERROR"
    assert invalid.json()["error"]["details"][0]["loc"] == ["body", "name"]
    unauth = client.get("/api/v1/agents")
    assert unauth.status_code == 401 and unauth.json()["error"]["code"] == "UNAUTHORIZED"
    bad_key = client.get("/api/v1/agents", headers={"Authorization": "Bearer dwk_nope"})
    assert bad_key.status_code == 401


def test_unexpected_error_is_enveloped_500_without_trace(settings, engine, clock, admin) -> None:
    app = create_app(settings, engine=engine, clock=clock)

    @app.get("/api/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret-detail dwk_should_not_leak")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/v1/boom", headers={**admin.headers, "X-Request-Id": "trace-me"})
    assert response.status_code == 500
    body = response.json()
    assert body["ok"] is False and body["error"]["code"] == "INTERNAL_ERROR"
    assert "secret-detail" not in response.text and "Traceback" not in response.text
    assert response.headers["x-request-id"] == "trace-me"


def test_request_id_echoed_or_generated(client: TestClient) -> None:
    echoed = client.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    spaced = client.get("/healthz", headers={"X-Request-Id": "job 42 / retry 1"})
    assert spaced.headers["x-request-id"] == "job 42 / retry 1"
    generated = client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    too_long = client.get("/healthz", headers={"X-Request-Id": "x" * 129})
    assert too_long.headers["x-request-id"] != "x" * 129


def test_revoked_and_expired_keys_are_401(client: TestClient, admin, engine, clock) -> None:
    created = client.post(
        "/api/v1/system/api-keys",
        headers=admin.headers,
        json={"name": "temp", "role": "viewer", "expires_at": "2026-11-25T13:00:00Z"},
    )
    assert created.status_code == 201
    temp = {"Authorization": f"Bearer {created.json()['data']['api_key']}"}
    assert client.get("/api/v1/agents", headers=temp).status_code == 200
    clock.advance(hours=2)
    assert client.get("/api/v1/agents", headers=temp).status_code == 401
    clock.advance(hours=-2)
    revoked = client.post(
        f"/api/v1/system/api-keys/{created.json()['data']['id']}/revoke", headers=admin.headers
    )
    assert revoked.json()["data"]["status"] == "revoked"
    assert client.get("/api/v1/agents", headers=temp).status_code == 401


def test_role_too_low_is_403_with_roles(client: TestClient, admin, engine) -> None:
    viewer = make_tenant(engine, role="viewer", org_id=admin.org_id)
    response = client.post("/api/v1/agents", headers=viewer.headers, json={"name": "x"})
    assert response.status_code == 403
    assert response.json()["error"]["details"] == {
        "required_role": "member",
        "actual_role": "viewer",
    }
    member = make_tenant(engine, role="member", org_id=admin.org_id)
    system = client.get("/api/v1/system/audit-logs", headers=member.headers)
    assert (
        system.status_code == 403 and system.json()["error"]["details"]["required_role"] == "admin"
    )


def test_global_key_must_name_org(client: TestClient, global_admin, admin) -> None:
    missing = client.get("/api/v1/agents", headers=global_admin.headers)
    assert missing.status_code == 422 and missing.json()["error"]["code"] == "VALIDATION_ERROR"
    named = client.get(
        "/api/v1/agents", params={"org_id": str(admin.org_id)}, headers=global_admin.headers
    )
    assert named.status_code == 200
    unknown = client.get(
        "/api/v1/agents",
        params={"org_id": "00000000-0000-0000-0000-000000000000"},
        headers=global_admin.headers,
    )
    assert unknown.status_code == 404


def test_health_and_readiness(client: TestClient, engine) -> None:
    assert client.get("/healthz").json() == {"ok": True, "data": {"status": "ok"}}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["data"]["status"] == "ready"
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    behind = client.get("/readyz")
    assert behind.status_code == 503 and behind.json()["error"]["code"] == "SCHEMA_NOT_CURRENT"


def test_openapi_has_stable_unique_operation_ids(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    operations = [op for path in spec["paths"].values() for op in path.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids))
    assert all(op.get("tags") for op in operations)
    assert "create_agent" in ids and "list_audit_logs" in ids
    assert not any(
        path.startswith("/api/") and not path.startswith("/api/v1/") for path in spec["paths"]
    )
    assert client.get("/docs").status_code == 200


def test_pagination_shape(client: TestClient, admin) -> None:
    for i in range(3):
        client.post("/api/v1/agents", headers=admin.headers, json={"name": f"a{i}"})
    data = client.get(
        "/api/v1/agents", params={"limit": 2, "offset": 1}, headers=admin.headers
    ).json()["data"]
    assert (data["count"], data["total_count"], data["limit"], data["offset"]) == (2, 3, 2, 1)
    assert [a["name"] for a in data["items"]] == ["a1", "a2"]
    too_big = client.get("/api/v1/agents", params={"limit": 201}, headers=admin.headers)
    assert too_big.status_code == 422


def test_times_are_utc_with_z(client: TestClient, admin) -> None:
    created = client.post("/api/v1/agents", headers=admin.headers, json={"name": "t"}).json()[
        "data"
    ]
    assert created["created_at"].endswith("Z")
