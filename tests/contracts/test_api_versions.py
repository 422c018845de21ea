"""Version history, config schemas and the diff over HTTP: written on create, upgrade and import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from driftwarden.cli import app as cli_app
from tests.contracts.helpers import API, data, definition, error

DEFS = f"{API}/contracts/definitions"
APPLY = f"{API}/contracts/apply-upgrade"
SCHEMA_V1 = {
    "type": "object",
    "properties": {"mode": {"enum": ["fast", "safe"]}, "limit": {"type": "integer", "maximum": 10}},
    "required": ["mode", "limit"],
}
SCHEMA_V2 = {
    "type": "object",
    "properties": {"mode": {"enum": ["fast", "safe"]}, "limit": {"type": "integer", "maximum": 10}},
    "required": ["mode"],
}


def _apply(client: TestClient, tenant: Any, gate: dict, target: str, key: str, **extra: Any) -> Any:
    body = {"definition_id": gate["id"], "target_contract_version": target, **extra}
    return client.post(APPLY, headers={**tenant.headers, "Idempotency-Key": key}, json=body)


def test_create_writes_the_first_version(client: TestClient, admin: Any) -> None:
    gate = definition(
        client,
        admin,
        "g",
        "1.0.0",
        config_schema=SCHEMA_V1,
        default_config={"mode": "safe"},
        changelog="first",
    )
    assert gate["config_schema"] == SCHEMA_V1
    [version] = data(client.get(f"{DEFS}/{gate['id']}/versions", headers=admin.headers))["items"]
    assert (
        version["contract_version"],
        version["config_schema"],
        version["default_config"],
        version["changelog"],
    ) == ("1.0.0", SCHEMA_V1, {"mode": "safe"}, "first")
    assert version["created_by_api_key_id"] == str(admin.api_key_id)
    one = data(client.get(f"{DEFS}/{gate['id']}/versions/1.0.0", headers=admin.headers))
    assert one == version
    error(
        client.get(f"{DEFS}/{gate['id']}/versions/9.9.9", headers=admin.headers),
        404,
        "CONTRACT_VERSION_NOT_FOUND",
    )


def test_invalid_schema_is_refused_with_its_path(client: TestClient, admin: Any) -> None:
    body = {
        "definition_type": "gate",
        "key": "bad",
        "name": "Bad",
        "contract_version": "1.0.0",
        "config_schema": {"type": "object", "properties": {"a": {"type": "strin"}}},
    }
    err = error(client.post(DEFS, headers=admin.headers, json=body), 422, "CONTRACT_SCHEMA_INVALID")
    assert err["details"][0]["path"] == "/properties/a/type"
    assert data(client.get(DEFS, headers=admin.headers))["total_count"] == 0


def test_apply_upgrade_writes_versions_carries_content_and_keeps_them_immutable(
    client: TestClient, admin: Any
) -> None:
    gate = definition(client, admin, "g", "1.0.0", config_schema=SCHEMA_V1, changelog="one")
    carried = data(_apply(client, admin, gate, "1.1.0", "k1"))
    assert carried["definition"]["config_schema"] == SCHEMA_V1
    data(_apply(client, admin, gate, "1.2.0", "k2", config_schema=SCHEMA_V2, changelog="relax"))
    listed = data(client.get(f"{DEFS}/{gate['id']}/versions", headers=admin.headers))
    assert [v["contract_version"] for v in listed["items"]] == ["1.2.0", "1.1.0", "1.0.0"]
    assert [v["changelog"] for v in listed["items"]] == ["relax", "one", "one"]
    back = data(_apply(client, admin, gate, "1.0.0", "k3"))  # an old version brings its schema back
    assert back["definition"]["config_schema"] == SCHEMA_V1
    error(
        _apply(client, admin, gate, "1.2.0", "k4", config_schema=SCHEMA_V1),
        409,
        "CONTRACT_VERSION_IMMUTABLE",
    )
    error(
        _apply(client, admin, gate, "1.3.0", "k5", config_schema={"type": 5}),
        422,
        "CONTRACT_SCHEMA_INVALID",
    )
    listed = data(client.get(f"{DEFS}/{gate['id']}/versions", headers=admin.headers))
    assert listed["total_count"] == 3


def test_diff_reports_undeclared_breaking_changes(client: TestClient, admin: Any) -> None:
    gate = definition(client, admin, "g", "1.0.0", config_schema=SCHEMA_V2)
    data(_apply(client, admin, gate, "1.1.0", "k1", config_schema=SCHEMA_V1))
    url = f"{DEFS}/{gate['id']}/diff"
    tightened = data(
        client.get(url, headers=admin.headers, params={"from": "1.0.0", "to": "1.1.0"})
    )
    assert tightened["changes"] == [
        {
            "path": "/required",
            "kind": "required_added",
            "breaking": True,
            "detail": "'limit' is now required",
        }
    ]
    assert (tightened["declared"], tightened["observed"], tightened["undeclared_breaking"]) == (
        "warning",
        "breaking",
        True,
    )
    relaxed = data(client.get(url, headers=admin.headers, params={"from": "1.1.0", "to": "1.0.0"}))
    assert (relaxed["observed"], relaxed["undeclared_breaking"]) == ("warning", False)
    same = data(client.get(url, headers=admin.headers, params={"from": "1.0.0", "to": "1.0.0"}))
    assert (same["changes"], same["declared"], same["observed"]) == ([], "none", "none")
    error(
        client.get(url, headers=admin.headers, params={"from": "1.0.0", "to": "2.0.0"}),
        404,
        "CONTRACT_VERSION_NOT_FOUND",
    )


def test_import_writes_versions_with_schemas(client: TestClient, admin: Any) -> None:
    doc = {
        "definitions": [
            {
                "definition_type": "gate",
                "key": "imp",
                "name": "Imp",
                "contract_version": "1.0.0",
                "config_schema": SCHEMA_V1,
                "default_config": {"mode": "fast"},
                "changelog": "imported",
            }
        ]
    }
    result = data(client.post(f"{API}/contracts/import", headers=admin.headers, json=doc))
    gate_id = result["definitions"]["items"][0]["id"]
    doc["definitions"][0].update(contract_version="1.1.0", config_schema=SCHEMA_V2, changelog="two")
    data(client.post(f"{API}/contracts/import", headers=admin.headers, json=doc))
    data(client.post(f"{API}/contracts/import", headers=admin.headers, json=doc))  # idempotent
    listed = data(client.get(f"{DEFS}/{gate_id}/versions", headers=admin.headers))["items"]
    assert [(v["contract_version"], v["config_schema"], v["changelog"]) for v in listed] == [
        ("1.1.0", SCHEMA_V2, "two"),
        ("1.0.0", SCHEMA_V1, "imported"),
    ]
    doc["definitions"][0]["config_schema"] = {"type": "object", "minProperties": 3}
    error(
        client.post(f"{API}/contracts/import", headers=admin.headers, json=doc),
        409,
        "CONTRACT_VERSION_IMMUTABLE",
    )
    doc["definitions"][0]["config_schema"] = {"minProperties": -1}
    err = error(
        client.post(f"{API}/contracts/import", headers=admin.headers, json=doc),
        422,
        "VALIDATION_ERROR",
    )
    assert err["details"][0]["loc"] == ["body", "definitions", 0, "config_schema"]


def test_cli_import_accepts_schemas_changelogs_and_defaults(
    tmp_path: Path, admin: Any, settings: Any, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftwarden.settings import get_settings

    doc = {
        "definitions": [
            {
                "definition_type": "gate",
                "key": "cli",
                "name": "Cli",
                "contract_version": "2.0.0",
                "config_schema": SCHEMA_V2,
                "default_config": {"mode": "safe"},
                "changelog": "from yaml",
            }
        ],
        "agents": [
            {
                "external_id": "x1",
                "name": "x1",
                "bindings": [{"definition_type": "gate", "key": "cli", "config": {"limit": 99}}],
            }
        ],
    }
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(doc))
    monkeypatch.setenv("DATABASE_URL", settings.db_url)
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(cli_app, ["import", str(path), "--org-id", str(admin.org_id)])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    gate_id = json.loads(done.stdout)["definitions"]["items"][0]["id"]
    [version] = data(client.get(f"{DEFS}/{gate_id}/versions", headers=admin.headers))["items"]
    assert (version["config_schema"], version["default_config"], version["changelog"]) == (
        SCHEMA_V2,
        {"mode": "safe"},
        "from yaml",
    )
    [item] = data(
        client.get(
            f"{API}/contracts/drift", headers=admin.headers, params={"min_drift": "breaking"}
        )
    )["items"]
    assert (item["config_valid"], item["config_errors"][0]["path"]) == (False, "/limit")
