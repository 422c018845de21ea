"""HTTP helpers for the contracts API tests."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

API = "/api/v1"


def data(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is True
    return body["data"]


def error(response: Any, status: int, code: str) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is False and body["error"]["code"] == code, body
    return body["error"]


def definition(
    client: TestClient,
    tenant: Any,
    key: str,
    version: str,
    *,
    definition_type: str = "gate",
    **extra: Any,
) -> dict[str, Any]:
    body = {
        "definition_type": definition_type,
        "key": key,
        "name": key.title(),
        "contract_version": version,
        **extra,
    }
    return data(client.post(f"{API}/contracts/definitions", headers=tenant.headers, json=body), 201)


def agent(client: TestClient, tenant: Any, name: str) -> dict[str, Any]:
    return data(client.post(f"{API}/agents", headers=tenant.headers, json={"name": name}), 201)


def bind(
    client: TestClient, tenant: Any, agent_id: str, definition_id: str, **extra: Any
) -> dict[str, Any]:
    response = client.post(
        f"{API}/agents/{agent_id}/bindings",
        headers=tenant.headers,
        json={"definition_id": definition_id, **extra},
    )
    assert response.status_code in (200, 201), response.text
    return response.json()["data"]
