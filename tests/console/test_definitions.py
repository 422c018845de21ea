"""The console shows a definition's versions and the schema diff between any two of them."""

from __future__ import annotations

from typing import Any

from tests.contracts.helpers import API, data, definition
from tests.support import make_tenant

V1 = {
    "type": "object",
    "properties": {"mode": {"enum": ["fast", "safe"]}, "limit": {"type": "integer"}},
    "required": ["mode", "limit"],
}
V2 = {"type": "object", "properties": {"mode": {"enum": ["fast", "safe"]}}, "required": ["mode"]}
V3 = {"type": "object", "properties": {"mode": {"enum": ["fast"]}}, "required": ["mode"]}


def _upgrade(
    client: Any, tenant: Any, definition_id: str, version: str, schema: dict, changelog: str
) -> None:
    data(
        client.post(
            f"{API}/contracts/apply-upgrade",
            headers={**tenant.headers, "Idempotency-Key": f"up-{version}"},
            json={
                "definition_id": definition_id,
                "target_contract_version": version,
                "config_schema": schema,
                "changelog": changelog,
            },
        )
    )


def test_versions_and_the_diff_between_any_two(client, admin, browser_for) -> None:
    gate = definition(client, admin, "pii-gate", "1.0.0", config_schema=V1)
    _upgrade(client, admin, gate["id"], "1.1.0", V2, "<script>alert(1)</script> limit dropped")
    _upgrade(client, admin, gate["id"], "1.2.0", V3, "only fast")
    browser = browser_for(admin)
    page = browser.get(f"/console/definitions/{gate['id']}")
    assert page.status_code == 200, page.text
    assert page.text.count("<code>1.") >= 3  # every version listed
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;" in page.text
    # By default the last step: 1.1.0 -> 1.2.0 removes an enum value under a minor bump.
    assert 'data-testid="diff-observed">breaking<' in page.text
    assert (
        "enum_value_removed" in page.text and 'data-testid="diff-undeclared-breaking"' in page.text
    )
    chosen = browser.get(
        f"/console/definitions/{gate['id']}", params={"from": "1.0.0", "to": "1.1.0"}
    )
    assert 'data-testid="diff-declared">warning<' in chosen.text
    assert "required_removed" in chosen.text and "property_removed" in chosen.text
    missing = browser.get(
        f"/console/definitions/{gate['id']}", params={"from": "1.0.0", "to": "9.9.9"}
    )
    assert missing.status_code == 404


def test_a_definition_of_another_org_is_not_found(client, admin, browser_for) -> None:
    gate = definition(client, admin, "pii-gate", "1.0.0", config_schema=V1)
    other = make_tenant(client.app.state.engine, role="admin")
    assert browser_for(other).get(f"/console/definitions/{gate['id']}").status_code == 404
