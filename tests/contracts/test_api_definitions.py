"""Contract definitions over HTTP.

Validation, duplicates, builtins (visible to all, immutable), isolation.
docs/reference/resources.md#contract-definitions
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.contracts.helpers import API, data, definition, error
from tests.support import make_tenant

URL = f"{API}/contracts/definitions"


def test_create_get_list_and_patch(client: TestClient, admin: Any) -> None:
    created = definition(
        client, admin, "pii-filter", "1.4.2", default_config={"strict": True}, description="PII"
    )
    assert (
        created["builtin"] is False
        and created["org_id"] == str(admin.org_id)
        and created["is_active"] is True
    )
    fetched = data(client.get(f"{URL}/{created['id']}", headers=admin.headers))
    assert fetched == created
    patched = data(
        client.patch(
            f"{URL}/{created['id']}",
            headers=admin.headers,
            json={"name": "PII filter", "is_active": False, "default_config": {"strict": False}},
        )
    )
    assert (patched["name"], patched["is_active"], patched["default_config"]) == (
        "PII filter",
        False,
        {"strict": False},
    )
    assert patched["contract_version"] == "1.4.2"
    assert (
        data(client.get(URL, headers=admin.headers))["total_count"] == 0
    )  # active_only by default
    listed = data(client.get(URL, headers=admin.headers, params={"active_only": "false"}))
    assert [d["key"] for d in listed["items"]] == ["pii-filter"]


def test_version_key_and_duplicate_rules(client: TestClient, admin: Any) -> None:
    body = {"definition_type": "gate", "key": "g", "name": "G", "contract_version": "v1.2.3"}
    invalid = error(
        client.post(URL, headers=admin.headers, json=body), 422, "CONTRACT_VERSION_INVALID"
    )
    assert invalid["details"][0]["loc"] == ["body", "contract_version"]
    bad_key = client.post(
        URL, headers=admin.headers, json={**body, "key": "Bad Key", "contract_version": "1.0.0"}
    )
    assert error(bad_key, 422, "VALIDATION_ERROR")["details"][0]["loc"] == ["body", "key"]
    definition(client, admin, "g", "1.0.0")
    definition(
        client, admin, "g", "1.0.0", definition_type="evaluator"
    )  # same key, other type is fine
    error(
        client.post(URL, headers=admin.headers, json={**body, "contract_version": "2.0.0"}),
        409,
        "CONTRACT_DEFINITION_EXISTS",
    )
    no_version_patch = client.patch(
        f"{URL}/{definition(client, admin, 'h', '1.0.0')['id']}",
        headers=admin.headers,
        json={"contract_version": "2.0.0"},
    )
    assert error(no_version_patch, 422, "VALIDATION_ERROR")["details"][0]["loc"] == [
        "body",
        "contract_version",
    ]


def test_builtins_visible_to_every_org_and_immutable(
    client: TestClient, admin: Any, global_admin: Any, engine: Any
) -> None:
    other = make_tenant(engine, role="member", name="Other")
    error(
        client.post(
            URL,
            headers=admin.headers,
            json={
                "definition_type": "gate",
                "key": "shared",
                "name": "S",
                "contract_version": "1.0.0",
                "builtin": True,
            },
        ),
        403,
        "FORBIDDEN",
    )
    builtin = definition(client, global_admin, "shared", "1.0.0", builtin=True)
    assert builtin["builtin"] is True and builtin["org_id"] is None
    for tenant in (admin, other):
        listed = data(client.get(URL, headers=tenant.headers))
        assert [d["id"] for d in listed["items"]] == [builtin["id"]]
        assert data(client.get(f"{URL}/{builtin['id']}", headers=tenant.headers))["key"] == "shared"
        error(
            client.patch(f"{URL}/{builtin['id']}", headers=tenant.headers, json={"name": "mine"}),
            403,
            "CONTRACT_DEFINITION_IMMUTABLE",
        )
    error(
        client.patch(
            f"{URL}/{builtin['id']}", headers=global_admin.headers, json={"is_active": False}
        ),
        403,
        "CONTRACT_DEFINITION_IMMUTABLE",
    )
    upgrade = client.post(
        f"{API}/contracts/apply-upgrade",
        headers={**admin.headers, "Idempotency-Key": "b1"},
        json={"definition_id": builtin["id"], "target_contract_version": "2.0.0"},
    )
    error(upgrade, 403, "CONTRACT_DEFINITION_IMMUTABLE")
    own_only = data(client.get(URL, headers=admin.headers, params={"include_builtin": "false"}))
    assert own_only["total_count"] == 0
    assert (
        data(client.get(f"{URL}/{builtin['id']}", headers=admin.headers))["contract_version"]
        == "1.0.0"
    )
    definition(client, admin, "shared", "5.0.0")  # an org may shadow a builtin key with its own


def test_org_isolation(client: TestClient, admin: Any, engine: Any) -> None:
    mine = definition(client, admin, "secret", "1.0.0")
    other = make_tenant(engine, role="admin", name="Other")
    error(
        client.get(f"{URL}/{mine['id']}", headers=other.headers),
        404,
        "CONTRACT_DEFINITION_NOT_FOUND",
    )
    error(
        client.patch(f"{URL}/{mine['id']}", headers=other.headers, json={"name": "x"}),
        404,
        "CONTRACT_DEFINITION_NOT_FOUND",
    )
    assert data(client.get(URL, headers=other.headers))["total_count"] == 0
    error(
        client.get(URL, headers=other.headers, params={"org_id": str(admin.org_id)}),
        403,
        "ORG_FORBIDDEN",
    )
    viewer = make_tenant(engine, role="viewer", org_id=admin.org_id)
    assert data(client.get(URL, headers=viewer.headers))["total_count"] == 1
    denied = error(
        client.post(
            URL,
            headers=viewer.headers,
            json={"definition_type": "gate", "key": "v", "name": "V", "contract_version": "1.0.0"},
        ),
        403,
        "FORBIDDEN",
    )
    assert denied["details"] == {"required_role": "member", "actual_role": "viewer"}


def test_an_empty_version_is_not_valid_semver(client: TestClient, admin: Any) -> None:
    """The empty string is a version string that is not SemVer.

    So it gets the SemVer error code, not a type error.
    docs/reference/resources.md#contract-definitions
    docs/reference/resources.md#upgrades
    """
    body = {"definition_type": "gate", "key": "g", "name": "G", "contract_version": ""}
    invalid = error(
        client.post(URL, headers=admin.headers, json=body), 422, "CONTRACT_VERSION_INVALID"
    )
    assert invalid["details"][0]["loc"] == ["body", "contract_version"]
    gate = definition(client, admin, "g", "1.0.0")
    for path, headers in (
        (f"{API}/contracts/upgrade-preview", admin.headers),
        (f"{API}/contracts/apply-upgrade", {**admin.headers, "Idempotency-Key": "empty-target"}),
    ):
        target = error(
            client.post(
                path,
                headers=headers,
                json={"definition_id": gate["id"], "target_contract_version": ""},
            ),
            422,
            "CONTRACT_VERSION_INVALID",
        )
        assert target["details"][0]["loc"] == ["body", "target_contract_version"]
    assert (
        data(client.get(f"{URL}/{gate['id']}", headers=admin.headers))["contract_version"]
        == "1.0.0"
    )
