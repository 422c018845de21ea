"""Schemas and configs through the public surface: bindings, the scan, promotion, auto-resolve.

Runs on SQLite, and on Postgres with RUN_DB_INTEGRATION=1 (the same tests).
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.contracts.helpers import API, agent, bind, data, definition

DRIFT, PROMOTE = f"{API}/contracts/drift", f"{API}/contracts/drift/promote-patterns"
APPLY = f"{API}/contracts/apply-upgrade"
V1 = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"mode": {"enum": ["fast", "safe"]}, "limit": {"type": "integer"}},
    "required": ["mode", "limit"],
}
# 1.1.0 drops `limit`, which 1.0.0 required: a config valid before ({"mode", "limit"}) now fails.
V2 = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"mode": {"enum": ["fast", "safe"]}},
    "required": ["mode"],
}
BOUNDED = {"type": "object", "properties": {"limit": {"type": "integer", "maximum": 10}}}


def _promote(client: TestClient, tenant: Any, **body: Any) -> dict:
    return data(client.post(PROMOTE, headers=tenant.headers, json=body))


def _pattern(client: TestClient, tenant: Any, pattern_id: str) -> dict:
    return data(client.get(f"{API}/patterns/{pattern_id}", headers=tenant.headers))


def test_required_property_removed_under_a_minor_bump_is_undeclared_breaking(
    client: TestClient, admin: Any
) -> None:
    gate = definition(client, admin, "g", "1.0.0", config_schema=V1)
    bot = agent(client, admin, "bot")
    bind(client, admin, bot["id"], gate["id"], config={"mode": "fast"})
    data(
        client.post(
            APPLY,
            headers={**admin.headers, "Idempotency-Key": "u1"},
            json={
                "definition_id": gate["id"],
                "target_contract_version": "1.1.0",
                "config_schema": V2,
            },
        )
    )
    scan = data(client.get(DRIFT, headers=admin.headers, params={"min_drift": "breaking"}))
    [item] = scan["items"]
    assert (item["drift"], item["undeclared_breaking"], item["config_valid"], item["severity"]) == (
        "warning",
        True,
        True,
        "breaking",
    )
    assert scan["counts"] == {"none": 0, "warning": 1, "breaking": 0, "invalid": 0}
    assert scan["severity_counts"] == {"none": 0, "warning": 0, "breaking": 1, "invalid": 0}
    assert scan["breaking_count"] == 0 and scan["total_count"] == 1
    promoted = _promote(client, admin, min_drift="breaking")
    assert promoted["created_pattern_count"] == 1
    pattern = _pattern(client, admin, promoted["pattern_ids"][0])
    assert pattern["priority"] == "high"
    assert pattern["title"].startswith("Contract drift (breaking)")
    evidence = pattern["evidence"]
    assert evidence["undeclared_breaking"] is True and evidence["severity"] == "breaking"
    assert {(c["path"], c["kind"]) for c in evidence["schema_changes"]} == {
        ("/properties/limit", "property_removed")
    }
    listed = data(client.get(f"{API}/agents/{bot['id']}/bindings", headers=admin.headers))["items"]
    assert (listed[0]["undeclared_breaking"], listed[0]["severity"]) == (True, "breaking")
    # Re-binding to the current version clears it: the pattern resolves.
    bind(
        client,
        admin,
        bot["id"],
        gate["id"],
        config={"mode": "fast"},
        definition_contract_version="1.1.0",
    )
    again = _promote(client, admin, min_drift="breaking")
    assert (again["created_pattern_count"], again["resolved_pattern_count"]) == (0, 1)


def test_a_config_that_violates_the_schema_is_breaking_and_resolves_when_fixed(
    client: TestClient, admin: Any
) -> None:
    gate = definition(
        client, admin, "g", "1.0.0", config_schema=BOUNDED, default_config={"limit": 5}
    )
    bot, ok_bot = agent(client, admin, "bot"), agent(client, admin, "ok")
    bad = bind(client, admin, bot["id"], gate["id"], config={"limit": 50})
    assert (bad["drift"], bad["config_valid"], bad["severity"]) == ("none", False, "breaking")
    assert bad["config_errors"] == [
        {"path": "/limit", "message": "50 is greater than the maximum of 10"}
    ]
    good = bind(client, admin, ok_bot["id"], gate["id"])  # the default config is valid
    assert (good["config_valid"], good["config_errors"], good["severity"]) == (True, [], "none")
    scan = data(client.get(DRIFT, headers=admin.headers, params={"min_drift": "breaking"}))
    assert [i["agent_name"] for i in scan["items"]] == ["bot"]
    assert scan["counts"]["none"] == 2 and scan["severity_counts"]["breaking"] == 1
    promoted = _promote(client, admin, min_drift="breaking")
    pattern = _pattern(client, admin, promoted["pattern_ids"][0])
    assert pattern["evidence"]["config_errors"] == bad["config_errors"]
    assert _promote(client, admin, min_drift="breaking")["reused_pattern_count"] == 1
    bind(client, admin, bot["id"], gate["id"], config={"limit": 9})
    fixed = _promote(client, admin, min_drift="breaking")
    assert (fixed["eligible_item_count"], fixed["resolved_pattern_count"]) == (0, 1)
    assert _pattern(client, admin, promoted["pattern_ids"][0])["status"] == "resolved"


def test_configs_are_judged_once_per_distinct_config_and_ordered_by_severity(
    client: TestClient, admin: Any
) -> None:
    gate = definition(client, admin, "g", "1.0.0", config_schema=BOUNDED)
    plain = definition(client, admin, "plain", "2.0.0")
    for name, limit in (("a", 1), ("b", 99), ("c", 1), ("d", 99)):
        bind(client, admin, agent(client, admin, name)["id"], gate["id"], config={"limit": limit})
    bind(
        client,
        admin,
        agent(client, admin, "e")["id"],
        plain["id"],
        definition_contract_version="1.0.0",
    )
    scan = data(client.get(DRIFT, headers=admin.headers, params={"include_healthy": True}))
    assert [(i["agent_name"], i["severity"]) for i in scan["items"]] == [
        ("b", "breaking"),
        ("d", "breaking"),
        ("e", "breaking"),
        ("a", "none"),
        ("c", "none"),
    ]
    assert scan["items"][2]["config_valid"] is None  # no schema: not judged
    paged = data(client.get(DRIFT, headers=admin.headers, params={"limit": 1, "offset": 1}))
    assert [i["agent_name"] for i in paged["items"]] == ["d"] and paged["total_count"] == 3


def test_preview_judges_configs_against_the_target_schema(client: TestClient, admin: Any) -> None:
    gate = definition(client, admin, "g", "1.0.0", config_schema=V1)
    for name, config in (("a", {"mode": "fast", "limit": 1}), ("b", {"mode": "safe", "limit": 2})):
        bind(client, admin, agent(client, admin, name)["id"], gate["id"], config=config)
    url = f"{API}/contracts/upgrade-preview"
    body = {"definition_id": gate["id"], "target_contract_version": "1.1.0"}
    same = data(client.post(url, headers=admin.headers, json=body))  # schema carried over
    assert (same["status"], same["config_invalid_after_count"]) == ("safe", 0)
    assert [i["config_valid_after"] for i in same["items"]] == [True, True]
    tighter = data(client.post(url, headers=admin.headers, json={**body, "config_schema": V2}))
    assert (tighter["status"], tighter["warning_count"], tighter["config_invalid_after_count"]) == (
        "risky",
        2,
        2,
    )
    assert tighter["items"][0]["config_errors_after"] == [
        {"path": "", "message": "Additional properties are not allowed ('limit' was unexpected)"}
    ]
    defaults = data(
        client.post(
            url,
            headers=admin.headers,
            json={**body, "config_schema": BOUNDED, "default_config": {"limit": 11}},
        )
    )
    assert defaults["config_invalid_after_count"] == 0  # each binding's own limit wins the merge
    none = data(client.post(url, headers=admin.headers, json={**body, "config_schema": None}))
    assert none["status"] == "safe" and none["items"][0]["config_valid_after"] is None
