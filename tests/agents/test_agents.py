"""Agents, and org isolation by list, by id and by body field.

docs/reference/resources.md#agents
"""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient

from tests.support import make_tenant


def test_create_read_update_list(client: TestClient, admin) -> None:
    created = client.post(
        "/api/v1/agents",
        headers=admin.headers,
        json={
            "name": "triage-bot",
            "agent_type": "support",
            "status": "build",
            "model": "gpt-x",
            "metadata": {"team": "care"},
            "description": "routes tickets",
        },
    )
    assert created.status_code == 201
    agent = created.json()["data"]
    assert agent["org_id"] == str(admin.org_id) and agent["metadata"] == {"team": "care"}
    fetched = client.get(f"/api/v1/agents/{agent['id']}", headers=admin.headers).json()["data"]
    assert fetched == agent
    patched = client.patch(
        f"/api/v1/agents/{agent['id']}",
        headers=admin.headers,
        json={"status": "production", "metadata": {"team": "ops"}},
    )
    assert patched.status_code == 200
    assert (
        patched.json()["data"]["status"] == "production"
        and patched.json()["data"]["name"] == "triage-bot"
    )
    client.post(
        "/api/v1/agents", headers=admin.headers, json={"name": "other", "agent_type": "sales"}
    )
    by_status = client.get(
        "/api/v1/agents", params={"status": "production"}, headers=admin.headers
    ).json()["data"]
    assert [a["name"] for a in by_status["items"]] == ["triage-bot"]
    by_type = client.get(
        "/api/v1/agents", params={"agent_type": "sales"}, headers=admin.headers
    ).json()["data"]
    assert [a["name"] for a in by_type["items"]] == ["other"]


def test_validation(client: TestClient, admin) -> None:
    too_long = client.post("/api/v1/agents", headers=admin.headers, json={"name": "x" * 201})
    assert too_long.status_code == 422
    bad_status = client.post(
        "/api/v1/agents", headers=admin.headers, json={"name": "x", "status": "gone"}
    )
    assert bad_status.status_code == 422
    unknown_field = client.post(
        "/api/v1/agents", headers=admin.headers, json={"name": "x", "colour": "red"}
    )
    assert unknown_field.status_code == 422
    created = client.post("/api/v1/agents", headers=admin.headers, json={"name": "x"}).json()[
        "data"
    ]
    null_name = client.patch(
        f"/api/v1/agents/{created['id']}", headers=admin.headers, json={"name": None}
    )
    assert null_name.status_code == 422
    not_uuid = client.get("/api/v1/agents/not-a-uuid", headers=admin.headers)
    assert not_uuid.status_code == 422


def test_duplicate_external_id_is_409(client: TestClient, admin) -> None:
    client.post("/api/v1/agents", headers=admin.headers, json={"name": "a", "external_id": "ext-1"})
    again = client.post(
        "/api/v1/agents", headers=admin.headers, json={"name": "b", "external_id": "ext-1"}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "AGENT_EXTERNAL_ID_EXISTS"


def test_org_isolation(client: TestClient, engine) -> None:
    org_a = make_tenant(engine, role="admin", name="A")
    org_b = make_tenant(engine, role="admin", name="B")
    b_agent = client.post(
        "/api/v1/agents", headers=org_b.headers, json={"name": "b-secret"}
    ).json()["data"]
    client.post("/api/v1/agents", headers=org_a.headers, json={"name": "a-own"})

    listed = client.get("/api/v1/agents", headers=org_a.headers).json()["data"]
    assert [a["name"] for a in listed["items"]] == ["a-own"] and listed["total_count"] == 1
    by_id = client.get(f"/api/v1/agents/{b_agent['id']}", headers=org_a.headers)
    assert by_id.status_code == 404
    patched = client.patch(
        f"/api/v1/agents/{b_agent['id']}", headers=org_a.headers, json={"name": "pwned"}
    )
    assert patched.status_code == 404
    list_other = client.get(
        "/api/v1/agents", params={"org_id": str(org_b.org_id)}, headers=org_a.headers
    )
    assert list_other.status_code == 403 and list_other.json()["error"]["code"] == "ORG_FORBIDDEN"
    create_other = client.post(
        "/api/v1/agents",
        headers=org_a.headers,
        json={"name": "planted", "org_id": str(org_b.org_id)},
    )
    assert (
        create_other.status_code == 403 and create_other.json()["error"]["code"] == "ORG_FORBIDDEN"
    )
    patch_via_query = client.patch(
        f"/api/v1/agents/{b_agent['id']}",
        params={"org_id": str(org_b.org_id)},
        headers=org_a.headers,
        json={"name": "pwned"},
    )
    assert patch_via_query.status_code == 403
    unchanged = client.get(f"/api/v1/agents/{b_agent['id']}", headers=org_b.headers).json()["data"]
    assert unchanged["name"] == "b-secret"
    b_names = [
        a["name"]
        for a in client.get("/api/v1/agents", headers=org_b.headers).json()["data"]["items"]
    ]
    assert b_names == ["b-secret"]


def test_unknown_agent_is_404(client: TestClient, admin) -> None:
    response = client.get(f"/api/v1/agents/{uuid.uuid4()}", headers=admin.headers)
    assert response.status_code == 404 and response.json()["error"]["code"] == "AGENT_NOT_FOUND"
