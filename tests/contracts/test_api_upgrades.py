"""Upgrade preview and apply over HTTP.

docs/reference/resources.md#upgrades

Would-be drift, status, sync_bindings, idempotency, builtins.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.contracts.helpers import API, agent, bind, data, definition, error
from tests.support import make_tenant

PREVIEW, APPLY = f"{API}/contracts/upgrade-preview", f"{API}/contracts/apply-upgrade"


def _fleet(client: TestClient, tenant: Any) -> dict[str, Any]:
    gate = definition(client, tenant, "pii-filter", "1.4.2")
    for name, bound in (
        ("a", "1.4.2"),
        ("b", "1.4.0"),
        ("c", "1.4.2"),
        ("d", "garbage"),
        ("e", "0.9.0"),
    ):
        bind(
            client,
            tenant,
            agent(client, tenant, name)["id"],
            gate["id"],
            definition_contract_version=bound,
        )
    return gate


def test_preview_minor_and_major(client: TestClient, admin: Any) -> None:
    gate = _fleet(client, admin)
    minor = data(
        client.post(
            PREVIEW,
            headers=admin.headers,
            json={"definition_id": gate["id"], "target_contract_version": "1.5.0"},
        )
    )
    assert (minor["status"], minor["binding_count"]) == (
        "risky",
        5,
    )  # the 'garbage' and 0.9.0 bindings
    assert (
        minor["warning_count"],
        minor["breaking_count"],
        minor["invalid_count"],
        minor["unchanged_count"],
    ) == (3, 1, 1, 0)
    assert [(i["agent_name"], i["drift"]) for i in minor["items"]] == [
        ("d", "invalid"),
        ("e", "breaking"),
        ("a", "warning"),
        ("b", "warning"),
        ("c", "warning"),
    ]
    assert minor["items"][2]["reason"] == "minor version changed 1.4.2 → 1.5.0"
    assert (
        minor["items"][2]["current_contract_version"] == "1.4.2"
        and minor["target_contract_version"] == "1.5.0"
    )
    major = data(
        client.post(
            PREVIEW,
            headers=admin.headers,
            json={
                "definition_id": gate["id"],
                "include_items": False,
                "target_contract_version": "2.0.0",
            },
        )
    )
    assert (major["breaking_count"], major["items"]) == (4, [])
    capped = data(
        client.post(
            PREVIEW,
            headers=admin.headers,
            json={"definition_id": gate["id"], "target_contract_version": "1.4.2", "max_items": 2},
        )
    )
    assert capped["unchanged_count"] == 2 and [i["agent_name"] for i in capped["items"]] == [
        "d",
        "e",
    ]
    error(
        client.post(
            PREVIEW,
            headers=admin.headers,
            json={"definition_id": gate["id"], "target_contract_version": "2"},
        ),
        422,
        "CONTRACT_VERSION_INVALID",
    )


def test_safe_preview(client: TestClient, admin: Any) -> None:
    gate = definition(client, admin, "g", "1.0.0")
    bind(client, admin, agent(client, admin, "a")["id"], gate["id"])
    safe = data(
        client.post(
            PREVIEW,
            headers=admin.headers,
            json={"definition_id": gate["id"], "target_contract_version": "1.1.0"},
        )
    )
    assert safe["status"] == "safe" and safe["warning_count"] == 1


def test_apply_definition_only_then_sync(client: TestClient, admin: Any) -> None:
    gate = _fleet(client, admin)
    headers = {**admin.headers, "Idempotency-Key": "up-1"}
    body = {"definition_id": gate["id"], "target_contract_version": "2.0.0"}
    error(client.post(APPLY, headers=admin.headers, json=body), 400, "IDEMPOTENCY_KEY_REQUIRED")
    applied = data(client.post(APPLY, headers=headers, json=body))
    assert (
        applied["definition"]["contract_version"] == "2.0.0"
        and applied["previous_contract_version"] == "1.4.2"
    )
    assert applied["bindings_updated"] == 0 and applied["preview"]["breaking_count"] == 4
    replay = client.post(APPLY, headers=headers, json=body)
    assert replay.headers.get("idempotent-replayed") == "true" and replay.json()["data"] == applied
    error(
        client.post(APPLY, headers=headers, json={**body, "target_contract_version": "3.0.0"}),
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )
    scan = data(client.get(f"{API}/contracts/drift", headers=admin.headers))
    assert scan["counts"] == {"none": 0, "warning": 0, "breaking": 4, "invalid": 1}
    synced = data(
        client.post(
            APPLY,
            headers={**admin.headers, "Idempotency-Key": "up-2"},
            json={**body, "target_contract_version": "2.0.1", "rollout_mode": "sync_bindings"},
        )
    )
    assert synced["bindings_updated"] == 5 and synced["preview"]["status"] == "safe"
    assert synced["preview"]["unchanged_count"] == 5 and {
        i["drift"] for i in synced["preview"]["items"]
    } == {"none"}
    after = data(
        client.get(
            f"{API}/contracts/drift", headers=admin.headers, params={"include_healthy": "true"}
        )
    )
    assert after["counts"] == {"none": 5, "warning": 0, "breaking": 0, "invalid": 0}
    assert {i["bound_contract_version"] for i in after["items"]} == {"2.0.1"}


def test_apply_rules(client: TestClient, admin: Any, engine: Any) -> None:
    gate = definition(client, admin, "g", "1.0.0")
    key = iter(range(100))

    def apply(tenant: Any, **body: Any) -> Any:
        return client.post(
            APPLY,
            headers={**tenant.headers, "Idempotency-Key": f"k{next(key)}"},
            json={"definition_id": gate["id"], **body},
        )

    error(apply(admin, target_contract_version="v2.0.0"), 422, "CONTRACT_VERSION_INVALID")
    error(
        apply(admin, target_contract_version="2.0.0", rollout_mode="everything"),
        422,
        "VALIDATION_ERROR",
    )
    other = make_tenant(engine, role="admin", name="Other")
    error(apply(other, target_contract_version="2.0.0"), 404, "CONTRACT_DEFINITION_NOT_FOUND")
    error(
        client.post(
            PREVIEW,
            headers=other.headers,
            json={"definition_id": gate["id"], "target_contract_version": "2.0.0"},
        ),
        404,
        "CONTRACT_DEFINITION_NOT_FOUND",
    )
    viewer = make_tenant(engine, role="viewer", org_id=admin.org_id)
    error(apply(viewer, target_contract_version="2.0.0"), 403, "FORBIDDEN")
    assert (
        data(
            client.post(
                PREVIEW,
                headers=viewer.headers,
                json={"definition_id": gate["id"], "target_contract_version": "2.0.0"},
            )
        )["status"]
        == "safe"
    )
    assert (
        data(client.get(f"{API}/contracts/definitions/{gate['id']}", headers=admin.headers))[
            "contract_version"
        ]
        == "1.0.0"
    )


def test_preview_with_many_distinct_versions(
    client: TestClient, admin: Any, monkeypatch: Any
) -> None:
    from driftwarden.contracts import upgrades

    gate = _fleet(client, admin)
    body = {"definition_id": gate["id"], "target_contract_version": "1.5.0", "max_items": 3}
    in_sql = data(client.post(PREVIEW, headers=admin.headers, json=body))
    monkeypatch.setattr(upgrades, "MAX_PAIRS_IN_SQL", 0)
    streamed = data(client.post(PREVIEW, headers=admin.headers, json=body))
    assert streamed == in_sql and [i["agent_name"] for i in streamed["items"]] == ["d", "e", "a"]
