"""Bindings over HTTP.

docs/reference/resources.md#bindings

Upsert, pinning, drift and reason on every binding, delete, isolation.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.contracts.helpers import API, agent, bind, data, definition, error
from tests.support import make_tenant


def test_bind_defaults_to_current_and_upserts(client: TestClient, admin: Any) -> None:
    gate = definition(client, admin, "pii-filter", "1.4.2")
    bot = agent(client, admin, "bot")
    url = f"{API}/agents/{bot['id']}/bindings"
    first = client.post(
        url, headers=admin.headers, json={"definition_id": gate["id"], "config": {"a": 1}}
    )
    created = data(first, 201)
    assert created["definition_contract_version"] == "1.4.2" and created["drift"] == "none"
    assert (created["definition_type"], created["definition_key"], created["enabled"]) == (
        "gate",
        "pii-filter",
        True,
    )
    again = data(
        client.post(
            url, headers=admin.headers, json={"definition_id": gate["id"], "enabled": False}
        ),
        200,
    )
    assert again["id"] == created["id"] and again["enabled"] is False and again["config"] == {}
    assert (
        again["definition_contract_version"] == "1.4.2"
    )  # an upsert without a version keeps the bound one
    pinned = bind(client, admin, bot["id"], gate["id"], definition_contract_version="1.3.0")
    assert (pinned["drift"], pinned["reason"]) == ("warning", "minor version changed 1.3.0 → 1.4.2")
    listed = data(client.get(url, headers=admin.headers))
    assert listed["total_count"] == 1 and listed["items"][0]["drift"] == "warning"


def test_pinned_invalid_versions_are_stored_as_given(client: TestClient, admin: Any) -> None:
    gate, ev = (
        definition(client, admin, "g", "2.0.0"),
        definition(client, admin, "e", "1.0.0", definition_type="evaluator"),
    )
    bot = agent(client, admin, "bot")
    weird = bind(client, admin, bot["id"], gate["id"], definition_contract_version="v1.2")
    assert weird["definition_contract_version"] == "v1.2" and weird["drift"] == "invalid"
    assert weird["reason"] == "bound version 'v1.2' is not valid SemVer"
    missing = bind(client, admin, bot["id"], ev["id"], definition_contract_version=None)
    assert (
        missing["definition_contract_version"] is None
        and missing["reason"] == "bound version is missing"
    )
    items = data(client.get(f"{API}/agents/{bot['id']}/bindings", headers=admin.headers))["items"]
    assert [(i["definition_key"], i["drift"]) for i in items] == [
        ("e", "invalid"),
        ("g", "invalid"),
    ]


def test_delete_and_errors(client: TestClient, admin: Any, global_admin: Any) -> None:
    gate = definition(client, admin, "g", "1.0.0")
    bot = agent(client, admin, "bot")
    binding = bind(client, admin, bot["id"], gate["id"])
    url = f"{API}/agents/{bot['id']}/bindings"
    assert (
        data(client.delete(f"{url}/{binding['id']}", headers=admin.headers))["id"] == binding["id"]
    )
    error(
        client.delete(f"{url}/{binding['id']}", headers=admin.headers),
        404,
        "CONTRACT_BINDING_NOT_FOUND",
    )
    assert data(client.get(url, headers=admin.headers))["total_count"] == 0
    error(
        client.post(url, headers=admin.headers, json={"definition_id": bot["id"]}),
        404,
        "CONTRACT_DEFINITION_NOT_FOUND",
    )
    error(
        client.post(
            f"{API}/agents/{gate['id']}/bindings",
            headers=admin.headers,
            json={"definition_id": gate["id"]},
        ),
        404,
        "AGENT_NOT_FOUND",
    )
    data(
        client.patch(
            f"{API}/contracts/definitions/{gate['id']}",
            headers=admin.headers,
            json={"is_active": False},
        )
    )
    error(
        client.post(url, headers=admin.headers, json={"definition_id": gate["id"]}),
        409,
        "CONTRACT_DEFINITION_INACTIVE",
    )
    shared = definition(client, global_admin, "shared", "3.0.0", builtin=True)
    assert bind(client, admin, bot["id"], shared["id"])["definition_contract_version"] == "3.0.0"


def test_other_orgs_cannot_see_or_bind(client: TestClient, admin: Any, engine: Any) -> None:
    gate = definition(client, admin, "g", "1.0.0")
    bot = agent(client, admin, "bot")
    binding = bind(client, admin, bot["id"], gate["id"])
    other = make_tenant(engine, role="admin", name="Other")
    theirs = agent(client, other, "their-bot")
    error(
        client.get(f"{API}/agents/{bot['id']}/bindings", headers=other.headers),
        404,
        "AGENT_NOT_FOUND",
    )
    error(
        client.delete(f"{API}/agents/{bot['id']}/bindings/{binding['id']}", headers=other.headers),
        404,
        "AGENT_NOT_FOUND",
    )
    error(
        client.post(
            f"{API}/agents/{theirs['id']}/bindings",
            headers=other.headers,
            json={"definition_id": gate["id"]},
        ),
        404,
        "CONTRACT_DEFINITION_NOT_FOUND",
    )
    viewer = make_tenant(engine, role="viewer", org_id=admin.org_id)
    error(
        client.post(
            f"{API}/agents/{bot['id']}/bindings",
            headers=viewer.headers,
            json={"definition_id": gate["id"]},
        ),
        403,
        "FORBIDDEN",
    )


def test_global_key_names_the_org_in_the_body(
    client: TestClient, admin: Any, global_admin: Any
) -> None:
    gate, bot = definition(client, admin, "g", "1.0.0"), agent(client, admin, "bot")
    url = f"{API}/agents/{bot['id']}/bindings"
    error(
        client.post(url, headers=global_admin.headers, json={"definition_id": gate["id"]}),
        422,
        "VALIDATION_ERROR",
    )
    created = data(
        client.post(
            url,
            headers=global_admin.headers,
            json={"definition_id": gate["id"], "org_id": str(admin.org_id)},
        ),
        201,
    )
    assert created["org_id"] == str(admin.org_id)
    listed = data(
        client.get(url, headers=global_admin.headers, params={"org_id": str(admin.org_id)})
    )
    assert [b["id"] for b in listed["items"]] == [created["id"]]
