"""The drift policy, its defaults, partial updates, ranges and roles.

docs/reference/scheduler.md#drift-policy
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.scheduler.conftest import PREFIX, ok_data, set_policy
from tests.support import make_tenant

DEFAULTS = {
    "enabled": False,
    "min_drift": "breaking",
    "promote_to_patterns": True,
    "scan_limit": 200,
    "schedule_name": "daily",
    "schedule_window_minutes": 1440,
    "alert_enabled": False,
    "alert_max_dedupe_hit_rate": 0.7,
    "alert_min_execution_rate": 0.5,
    "alert_cooldown_minutes": 60,
}


def test_defaults_when_no_row(client: TestClient, admin) -> None:
    data = ok_data(client.get(f"{PREFIX}/drift-policy", headers=admin.headers))
    assert data["is_default"] is True and data["org_id"] == str(admin.org_id)
    assert {k: data[k] for k in DEFAULTS} == DEFAULTS


def test_partial_update_keeps_other_fields(client: TestClient, admin) -> None:
    set_policy(client, admin, enabled=True, alert_cooldown_minutes=5)
    data = set_policy(client, admin, schedule_name="nightly.v2")
    assert data["is_default"] is False
    assert (
        data["enabled"] is True
        and data["alert_cooldown_minutes"] == 5
        and data["schedule_name"] == "nightly.v2"
    )
    again = ok_data(client.get("/api/system/contracts/drift-policy", headers=admin.headers))
    assert again == data


def test_out_of_range_values_are_422(client: TestClient, admin) -> None:
    for field, value in [
        ("scan_limit", 0),
        ("scan_limit", 1001),
        ("schedule_window_minutes", 4),
        ("schedule_window_minutes", 10081),
        ("alert_max_dedupe_hit_rate", 1.5),
        ("alert_min_execution_rate", -0.1),
        ("alert_cooldown_minutes", 10081),
        ("min_drift", "none"),
        ("schedule_name", "Daily"),
        ("schedule_name", "a" * 65),
    ]:
        response = client.post(f"{PREFIX}/drift-policy", headers=admin.headers, json={field: value})
        assert response.status_code == 422, (field, value)
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert (
        ok_data(client.get(f"{PREFIX}/drift-policy", headers=admin.headers))["is_default"] is True
    )


def test_needs_admin_and_own_org(client: TestClient, admin, engine: Engine, global_admin) -> None:
    member = make_tenant(engine, role="member", org_id=admin.org_id)
    denied = client.get(f"{PREFIX}/drift-policy", headers=member.headers)
    assert (
        denied.status_code == 403 and denied.json()["error"]["details"]["required_role"] == "admin"
    )
    other = make_tenant(engine, role="admin", name="Other")
    forbidden = client.post(
        f"{PREFIX}/drift-policy",
        headers=other.headers,
        json={"org_id": str(admin.org_id), "enabled": True},
    )
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "ORG_FORBIDDEN"
    missing_org = client.get(f"{PREFIX}/drift-policy", headers=global_admin.headers)
    assert missing_org.status_code == 422
    by_global = set_policy(client, global_admin, org_id=str(admin.org_id), enabled=True)
    assert by_global["enabled"] is True and by_global["org_id"] == str(admin.org_id)
