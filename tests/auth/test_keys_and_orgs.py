"""Orgs and API keys, key hygiene, and isolation of the admin surface.

docs/reference/resources.md#orgs-and-api-keys
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import select

from driftwarden.auth.models import ApiKey
from tests.support import make_tenant


def test_key_format_and_storage(client: TestClient, admin, session_factory) -> None:
    created = client.post(
        "/api/v1/system/api-keys", headers=admin.headers, json={"name": "ci", "role": "member"}
    )
    assert created.status_code == 201
    data = created.json()["data"]
    assert re.fullmatch(r"dwk_[A-Za-z0-9_-]{40}", data["api_key"])
    assert data["key_prefix"] == data["api_key"][:12] and data["status"] == "active"
    with session_factory() as session:
        row = session.get(ApiKey, uuid.UUID(data["id"]))
    # Stored only as the hex SHA-256 of the key (docs/reference/resources.md, keys):
    # hashlib, not keys.
    assert row.key_hash == hashlib.sha256(data["api_key"].encode()).hexdigest()
    listed = client.get("/api/v1/system/api-keys", headers=admin.headers)
    assert data["api_key"] not in listed.text and row.key_hash not in listed.text
    assert {"api_key", "key_hash"}.isdisjoint(listed.json()["data"]["items"][0])


def test_no_key_material_in_logs(client: TestClient, admin, caplog, session_factory) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "driftwarden"):  # whatever an earlier test in this process configured
        caplog.set_level(logging.DEBUG, logger=name)
    created = client.post(
        "/api/v1/system/api-keys", headers=admin.headers, json={"name": "x", "role": "viewer"}
    )
    plaintext = created.json()["data"]["api_key"]
    headers = {"Authorization": f"Bearer {plaintext}"}
    client.get("/api/v1/agents", headers=headers)
    client.post("/api/v1/agents", headers=headers, json={"name": "denied"})
    client.get("/api/v1/agents", headers={"Authorization": "Bearer dwk_wrongwrongwrong"})
    with session_factory() as session:
        hashes = list(session.scalars(select(ApiKey.key_hash)))
    logged = caplog.text
    assert caplog.records, "expected the requests to log something"
    for secret in [plaintext, admin.api_key, "dwk_wrongwrongwrong", *hashes]:
        assert secret not in logged
    denied = client.post("/api/v1/agents", headers=headers, json={"name": "denied"})
    assert plaintext not in denied.text


def test_admin_cannot_escalate(client: TestClient, admin, engine) -> None:
    as_global = client.post(
        "/api/v1/system/api-keys",
        headers=admin.headers,
        json={"name": "g", "role": "admin", "org_id": None},
    )
    assert as_global.status_code == 403 and as_global.json()["error"]["code"] == "FORBIDDEN"
    left_out = client.post(
        "/api/v1/system/api-keys", headers=admin.headers, json={"name": "own", "role": "viewer"}
    )
    assert left_out.status_code == 201 and left_out.json()["data"]["org_id"] == str(admin.org_id)
    other = make_tenant(engine, role="admin", name="Other")
    cross = client.post(
        "/api/v1/system/api-keys",
        headers=admin.headers,
        json={"name": "x", "role": "viewer", "org_id": str(other.org_id)},
    )
    assert cross.status_code == 403 and cross.json()["error"]["code"] == "ORG_FORBIDDEN"
    member = make_tenant(engine, role="member", org_id=admin.org_id)
    by_member = client.post(
        "/api/v1/system/api-keys", headers=member.headers, json={"name": "x", "role": "admin"}
    )
    assert by_member.status_code == 403
    create_org = client.post("/api/v1/system/orgs", headers=admin.headers, json={"name": "New"})
    assert create_org.status_code == 403


def test_global_admin_manages_orgs_and_global_keys(client: TestClient, global_admin) -> None:
    org = client.post(
        "/api/v1/system/orgs", headers=global_admin.headers, json={"name": "Beta", "slug": "beta"}
    )
    assert org.status_code == 201 and org.json()["data"]["slug"] == "beta"
    dup = client.post(
        "/api/v1/system/orgs", headers=global_admin.headers, json={"name": "Beta2", "slug": "beta"}
    )
    assert dup.status_code == 409
    key = client.post(
        "/api/v1/system/api-keys", headers=global_admin.headers, json={"name": "g", "role": "admin"}
    )
    assert key.json()["data"]["org_id"] is None
    org_id = org.json()["data"]["id"]
    assert (
        client.get(f"/api/v1/system/orgs/{org_id}", headers=global_admin.headers).status_code == 200
    )
    assert (
        client.get("/api/v1/system/orgs", headers=global_admin.headers).json()["data"][
            "total_count"
        ]
        == 1
    )


def test_org_admin_sees_only_its_org(client: TestClient, engine) -> None:
    org_a = make_tenant(engine, role="admin", name="A")
    org_b = make_tenant(engine, role="admin", name="B")
    assert (
        client.get(f"/api/v1/system/orgs/{org_b.org_id}", headers=org_a.headers).status_code == 404
    )
    orgs = client.get("/api/v1/system/orgs", headers=org_a.headers).json()["data"]["items"]
    assert [o["id"] for o in orgs] == [str(org_a.org_id)]
    keys_a = client.get("/api/v1/system/api-keys", headers=org_a.headers).json()["data"]["items"]
    assert {k["org_id"] for k in keys_a} == {str(org_a.org_id)}
    revoke_b = client.post(
        f"/api/v1/system/api-keys/{org_b.api_key_id}/revoke", headers=org_a.headers
    )
    assert revoke_b.status_code == 404
    assert client.get("/api/v1/agents", headers=org_b.headers).status_code == 200
    audit = client.get(
        "/api/v1/system/audit-logs", params={"org_id": str(org_b.org_id)}, headers=org_a.headers
    )
    assert audit.status_code == 403
