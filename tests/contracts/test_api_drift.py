"""GET /contracts/drift over HTTP.

Counts whatever the limit, order, filters, disabled, isolation.
docs/reference/resources.md#drift-scan
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from driftwarden.contracts.schemas import DriftScanRead
from tests.contracts.helpers import API, agent, bind, data, definition, error
from tests.support import make_tenant

URL = f"{API}/contracts/drift"


def _world(client: TestClient, tenant: Any) -> dict[str, Any]:
    gate = definition(client, tenant, "pii-filter", "2.0.0")
    tone = definition(client, tenant, "tone", "1.3.0", definition_type="evaluator")
    beta = definition(client, tenant, "beta", "0.4.0", definition_type="run_type")
    bots = {name: agent(client, tenant, name) for name in ("zeta", "alpha", "mid")}
    bind(
        client, tenant, bots["zeta"]["id"], gate["id"], definition_contract_version="1.4.2"
    )  # breaking
    bind(
        client, tenant, bots["alpha"]["id"], gate["id"], definition_contract_version="1.9.9"
    )  # breaking
    bind(
        client,
        tenant,
        bots["alpha"]["id"],
        tone["id"],
        definition_contract_version="1.2.0",
        enabled=False,
    )  # warning
    bind(client, tenant, bots["mid"]["id"], tone["id"])  # none
    bind(
        client, tenant, bots["mid"]["id"], beta["id"], definition_contract_version="latest"
    )  # invalid
    return bots


def test_scan_shape_order_and_counts(client: TestClient, admin: Any) -> None:
    _world(client, admin)
    scan = data(client.get(URL, headers=admin.headers))
    assert scan["counts"] == {"none": 1, "warning": 1, "breaking": 2, "invalid": 1}
    assert (scan["breaking_count"], scan["warning_count"], scan["invalid_count"]) == (2, 1, 1)
    assert (scan["checked_agent_count"], scan["checked_binding_count"], scan["total_count"]) == (
        3,
        5,
        4,
    )
    assert [(i["drift"], i["agent_name"], i["definition_key"]) for i in scan["items"]] == [
        ("invalid", "mid", "beta"),
        ("breaking", "alpha", "pii-filter"),
        ("breaking", "zeta", "pii-filter"),
        ("warning", "alpha", "tone"),
    ]
    assert scan["items"][3]["enabled"] is False
    assert scan["items"][2]["reason"] == "major version changed 1.4.2 → 2.0.0"
    assert (scan["limit"], scan["offset"], scan["count"]) == (200, 0, 4)


def test_limit_never_changes_counts(client: TestClient, admin: Any) -> None:
    _world(client, admin)
    page = data(
        client.get(
            URL, headers=admin.headers, params={"limit": 1, "offset": 1, "include_healthy": "true"}
        )
    )
    assert (
        page["counts"] == {"none": 1, "warning": 1, "breaking": 2, "invalid": 1}
        and page["total_count"] == 5
    )
    assert [i["agent_name"] for i in page["items"]] == ["alpha"] and page["count"] == 1
    last = data(
        client.get(URL, headers=admin.headers, params={"offset": 4, "include_healthy": "true"})
    )
    assert [i["drift"] for i in last["items"]] == ["none"]


def test_filters(client: TestClient, admin: Any) -> None:
    bots = _world(client, admin)
    breaking = data(client.get(URL, headers=admin.headers, params={"min_drift": "breaking"}))
    assert [i["drift"] for i in breaking["items"]] == ["invalid", "breaking", "breaking"]
    only_invalid = data(client.get(URL, headers=admin.headers, params={"min_drift": "invalid"}))
    assert only_invalid["total_count"] == 1
    alpha = data(client.get(URL, headers=admin.headers, params={"agent_id": bots["alpha"]["id"]}))
    assert alpha["checked_agent_count"] == 1 and alpha["checked_binding_count"] == 2
    evaluators = data(
        client.get(
            URL,
            headers=admin.headers,
            params={"definition_type": "evaluator", "include_healthy": "true"},
        )
    )
    assert [(i["definition_key"], i["drift"]) for i in evaluators["items"]] == [
        ("tone", "warning"),
        ("tone", "none"),
    ]
    error(
        client.get(URL, headers=admin.headers, params={"min_drift": "bad"}), 422, "VALIDATION_ERROR"
    )
    error(client.get(URL, headers=admin.headers, params={"limit": 1001}), 422, "VALIDATION_ERROR")


def test_org_isolation_and_legacy_prefix(
    client: TestClient, admin: Any, engine: Any, global_admin: Any
) -> None:
    bots = _world(client, admin)
    other = make_tenant(engine, role="viewer", name="Other")
    empty = data(client.get(URL, headers=other.headers))
    assert empty["checked_binding_count"] == 0 and empty["items"] == []
    error(
        client.get(URL, headers=other.headers, params={"agent_id": bots["alpha"]["id"]}),
        404,
        "AGENT_NOT_FOUND",
    )
    error(
        client.get(URL, headers=other.headers, params={"org_id": str(admin.org_id)}),
        403,
        "ORG_FORBIDDEN",
    )
    error(client.get(URL, headers=global_admin.headers), 422, "VALIDATION_ERROR")
    as_global = data(
        client.get(URL, headers=global_admin.headers, params={"org_id": str(admin.org_id)})
    )
    legacy = client.get("/api/contracts/drift", headers=admin.headers)
    assert legacy.headers["deprecation"] == "true" and legacy.json()["data"] == as_global


def test_the_body_is_what_the_model_says(client: TestClient, admin: Any) -> None:
    """The route renders its body without validating it: the model must take it unchanged."""
    bots = _world(client, admin)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    schemed = definition(client, admin, "schemed", "1.0.0", config_schema=schema)
    bind(client, admin, bots["zeta"]["id"], schemed["id"], config={"n": "x"})
    response = client.get(URL, headers=admin.headers, params={"min_drift": "none"})
    assert response.headers["content-type"] == "application/json"
    scanned = response.json()["data"]
    assert scanned["count"] == 6
    (bad,) = [i for i in scanned["items"] if i["config_valid"] is False]
    assert [e["path"] for e in bad["config_errors"]] == ["/n"] and bad["severity"] == "breaking"
    assert DriftScanRead.model_validate(scanned).model_dump(mode="json") == scanned
