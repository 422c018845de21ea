"""Bulk import over HTTP and from the command line.

Upsert by keys, all or nothing, every bad path named.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from driftwarden.cli import app as cli_app
from tests.contracts.helpers import API, data, definition, error
from tests.support import make_tenant

URL = f"{API}/contracts/import"


def _doc() -> dict[str, Any]:
    return {
        "definitions": [
            {
                "definition_type": "gate",
                "key": "pii-filter",
                "name": "PII",
                "contract_version": "2.0.0",
            },
            {
                "definition_type": "evaluator",
                "key": "tone",
                "name": "Tone",
                "contract_version": "1.3.0",
                "default_config": {"t": 1},
            },
        ],
        "agents": [
            {
                "external_id": "crm-1",
                "name": "alpha",
                "status": "production",
                "bindings": [
                    {
                        "definition_type": "gate",
                        "key": "pii-filter",
                        "definition_contract_version": "1.4.2",
                    },
                    {"definition_type": "evaluator", "key": "tone"},
                ],
            },
            {
                "external_id": "crm-2",
                "name": "beta",
                "metadata": {"team": "x"},
                "bindings": [
                    {
                        "definition_type": "gate",
                        "key": "pii-filter",
                        "enabled": False,
                        "definition_contract_version": "v1",
                    }
                ],
            },
        ],
    }


def _tallies(result: dict[str, Any]) -> tuple:
    return tuple(
        (result[k]["created"], result[k]["updated"], result[k]["unchanged"])
        for k in ("definitions", "agents", "bindings")
    )


def test_import_creates_then_is_idempotent_then_updates(client: TestClient, admin: Any) -> None:
    first = data(client.post(URL, headers=admin.headers, json=_doc()))
    assert _tallies(first) == ((2, 0, 0), (2, 0, 0), (3, 0, 0)) and first["dry_run"] is False
    assert first["agents"]["created_external_ids"] == ["crm-1", "crm-2"]
    scan = data(
        client.get(
            f"{API}/contracts/drift", headers=admin.headers, params={"include_healthy": "true"}
        )
    )
    assert [
        (i["agent_name"], i["definition_key"], i["drift"], i["enabled"]) for i in scan["items"]
    ] == [
        ("beta", "pii-filter", "invalid", False),
        ("alpha", "pii-filter", "breaking", True),
        ("alpha", "tone", "none", True),
    ]
    assert _tallies(data(client.post(URL, headers=admin.headers, json=_doc()))) == (
        (0, 0, 2),
        (0, 0, 2),
        (0, 0, 3),
    )
    changed = _doc()
    changed["definitions"][0]["contract_version"] = "2.1.0"
    changed["agents"][0]["name"] = "alpha-2"
    changed["agents"][1]["bindings"][0]["definition_contract_version"] = "2.1.0"
    changed["agents"].append(
        {
            "external_id": "crm-3",
            "name": "gamma",
            "bindings": [{"definition_type": "gate", "key": "pii-filter"}],
        }
    )
    third = data(client.post(URL, headers=admin.headers, json=changed))
    assert _tallies(third) == ((0, 1, 1), (1, 1, 1), (1, 1, 2))
    assert [d["outcome"] for d in third["definitions"]["items"]] == ["updated", "unchanged"]
    assert third["agents"]["updated_external_ids"] == ["crm-1"]
    after = data(
        client.get(
            f"{API}/contracts/drift", headers=admin.headers, params={"include_healthy": "true"}
        )
    )
    assert after["counts"] == {"none": 3, "warning": 0, "breaking": 1, "invalid": 0}
    assert {i["bound_contract_version"] for i in after["items"] if i["agent_name"] == "gamma"} == {
        "2.1.0"
    }


def test_import_binds_builtins_and_existing_definitions(
    client: TestClient, admin: Any, global_admin: Any
) -> None:
    definition(client, global_admin, "shared", "3.0.0", builtin=True)
    own = definition(client, admin, "mine", "1.0.0", definition_type="run_type")
    doc = {
        "agents": [
            {
                "external_id": "x",
                "name": "x",
                "bindings": [
                    {"definition_type": "gate", "key": "shared"},
                    {"definition_type": "run_type", "key": "mine"},
                ],
            }
        ]
    }
    result = data(client.post(URL, headers=admin.headers, json=doc))
    assert _tallies(result) == ((0, 0, 0), (1, 0, 0), (2, 0, 0))
    agent_id = data(client.get(f"{API}/agents", headers=admin.headers))["items"][0]["id"]
    bindings = data(client.get(f"{API}/agents/{agent_id}/bindings", headers=admin.headers))["items"]
    assert {(b["definition_key"], b["definition_contract_version"]) for b in bindings} == {
        ("shared", "3.0.0"),
        ("mine", "1.0.0"),
    }
    assert own["id"] in {b["definition_id"] for b in bindings}


def test_invalid_import_names_every_path_and_writes_nothing(client: TestClient, admin: Any) -> None:
    bad = _doc()
    bad["definitions"][1]["contract_version"] = "1.3"
    bad["agents"][0]["bindings"][1]["key"] = "Not A Key"
    bad["agents"][1]["status"] = "sleeping"
    structural = error(client.post(URL, headers=admin.headers, json=bad), 422, "VALIDATION_ERROR")
    assert sorted(tuple(d["loc"]) for d in structural["details"]) == [
        ("body", "agents", 0, "bindings", 1, "key"),
        ("body", "agents", 1, "status"),
        ("body", "definitions", 1, "contract_version"),
    ]
    semantic = _doc()
    semantic["definitions"].append(dict(semantic["definitions"][0]))
    semantic["agents"][1]["external_id"] = "crm-1"
    semantic["agents"][1]["bindings"].append({"definition_type": "run_type", "key": "nowhere"})
    semantic["agents"][0]["bindings"].append({"definition_type": "gate", "key": "pii-filter"})
    problems = error(
        client.post(URL, headers=admin.headers, json=semantic), 422, "VALIDATION_ERROR"
    )["details"]
    assert [tuple(p["loc"]) for p in problems] == [
        ("body", "definitions", 2, "key"),
        ("body", "agents", 0, "bindings", 2, "key"),
        ("body", "agents", 1, "external_id"),
        ("body", "agents", 1, "bindings", 1, "key"),
    ]
    assert data(client.get(f"{API}/agents", headers=admin.headers))["total_count"] == 0
    assert (
        data(client.get(f"{API}/contracts/definitions", headers=admin.headers))["total_count"] == 0
    )


def test_document_size_is_bounded(
    client: TestClient, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftwarden.contracts import schemas

    monkeypatch.setattr(schemas, "MAX_IMPORT_BINDINGS", 2)
    too_big = error(client.post(URL, headers=admin.headers, json=_doc()), 422, "VALIDATION_ERROR")
    assert "split the import" in too_big["details"][0]["msg"]
    assert data(client.get(f"{API}/agents", headers=admin.headers))["total_count"] == 0


def test_dry_run_roles_and_isolation(
    client: TestClient, admin: Any, engine: Any, global_admin: Any
) -> None:
    dry = data(client.post(URL, headers=admin.headers, json=_doc(), params={"dry_run": "true"}))
    assert dry["dry_run"] is True and _tallies(dry) == ((2, 0, 0), (2, 0, 0), (3, 0, 0))
    assert data(client.get(f"{API}/agents", headers=admin.headers))["total_count"] == 0
    viewer = make_tenant(engine, role="viewer", org_id=admin.org_id)
    error(client.post(URL, headers=viewer.headers, json=_doc()), 403, "FORBIDDEN")
    other = make_tenant(engine, role="member", name="Other")
    error(
        client.post(URL, headers=other.headers, json={**_doc(), "org_id": str(admin.org_id)}),
        403,
        "ORG_FORBIDDEN",
    )
    data(client.post(URL, headers=admin.headers, json=_doc()))
    # The same external ids and keys in another org are that org's own rows.
    assert _tallies(data(client.post(URL, headers=other.headers, json=_doc()))) == (
        (2, 0, 0),
        (2, 0, 0),
        (3, 0, 0),
    )
    as_global = data(
        client.post(URL, headers=global_admin.headers, json={**_doc(), "org_id": str(admin.org_id)})
    )
    assert as_global["org_id"] == str(admin.org_id) and as_global["agents"]["unchanged"] == 2


@contextlib.contextmanager
def _cli_on(settings: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """`driftwarden import ARGS...` on the test's database: yields the runner of one call."""
    from driftwarden.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", settings.db_url)
    get_settings.cache_clear()
    try:
        yield lambda *args: CliRunner().invoke(cli_app, ["import", *map(str, args)])
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_cli_import(
    fmt: str,
    tmp_path: Path,
    admin: Any,
    settings: Any,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / f"fleet.{fmt}"
    path.write_text(yaml.safe_dump(_doc()) if fmt == "yaml" else json.dumps(_doc()))
    with _cli_on(settings, monkeypatch) as run:
        dry = run(path, "--org-id", admin.org_id, "--dry-run")
        done = run(path, "--org-id", admin.org_id)
        bad = _doc()
        bad["agents"][0]["bindings"][0]["key"] = "ghost"
        bad["definitions"][0]["contract_version"] = "v2"
        path.write_text(yaml.safe_dump(bad) if fmt == "yaml" else json.dumps(bad))
        rejected = run(path, "--org-id", admin.org_id)
    assert dry.exit_code == 0 and json.loads(dry.stdout)["dry_run"] is True
    assert done.exit_code == 0, done.output
    assert _tallies(json.loads(done.stdout)) == ((2, 0, 0), (2, 0, 0), (3, 0, 0))
    assert rejected.exit_code == 2 and "definitions[0].contract_version" in rejected.output
    assert data(client.get(f"{API}/agents", headers=admin.headers))["total_count"] == 2


def test_cli_import_reports_what_the_database_refuses(
    tmp_path: Path, admin: Any, settings: Any, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A document valid in shape but naming an unknown definition: every path, exit 2."""
    doc = _doc()
    doc["agents"][0]["bindings"][0]["key"] = "ghost"
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps(doc))
    with _cli_on(settings, monkeypatch) as run:
        rejected = run(path, "--org-id", admin.org_id)
    assert rejected.exit_code == 2, rejected.output
    assert "agents[0].bindings[0].key: " in rejected.stderr
    assert "import rejected: 1 problem(s); nothing was written" in rejected.stderr
    assert data(client.get(f"{API}/agents", headers=admin.headers))["total_count"] == 0


def test_import_is_set_based(client: TestClient, admin: Any, engine: Any) -> None:
    """The number of statements does not grow with the number of agents and bindings."""
    from sqlalchemy import event

    def doc(prefix: str, n: int) -> dict[str, Any]:
        base = _doc()
        base["agents"] = [
            {
                "external_id": f"{prefix}{i}",
                "name": f"{prefix}{i}",
                "bindings": [
                    {
                        "definition_type": "gate",
                        "key": "pii-filter",
                        "definition_contract_version": f"1.{i}.0",
                    },
                    {"definition_type": "evaluator", "key": "tone"},
                ],
            }
            for i in range(n)
        ]
        return base

    data(
        client.post(URL, headers=admin.headers, json={**_doc(), "agents": []})
    )  # the definitions, once
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    counts = []
    for prefix, n in (("small", 3), ("large", 120)):
        statements.clear()
        result = data(client.post(URL, headers=admin.headers, json=doc(prefix, n)))
        assert result["agents"]["created"] == n and result["bindings"]["created"] == 2 * n
        counts.append(len(statements))
    changed = doc("large", 120)
    for agent_doc in changed["agents"]:
        agent_doc["bindings"][1]["enabled"] = False
    statements.clear()
    assert data(client.post(URL, headers=admin.headers, json=changed))["bindings"]["updated"] == 120
    assert counts[0] == counts[1] and len(statements) <= counts[1] + 2, (counts, len(statements))


ODD_TEXT = 'tab\there, "quoted", back\\slash, \\N, line\nbreak, é ☃'


def test_import_stores_json_values_and_odd_text_exactly(client: TestClient, admin: Any) -> None:
    """What COPY's text format must escape (tabs, newlines, backslashes, its NULL marker \\N)
    and every JSON shape a jsonb column takes (boolean schema, nesting, floats, nulls)."""
    config = {"threshold": 0.25, "tags": ["a", ODD_TEXT], "nested": {"none": None, "n": [1, 2.5]}}
    doc = {
        "definitions": [
            {
                "definition_type": "gate",
                "key": "odd",
                "name": ODD_TEXT,
                "contract_version": "1.0.0",
                "config_schema": True,
                "default_config": {"k": ODD_TEXT},
                "description": ODD_TEXT,
            }
        ],
        "agents": [
            {
                "external_id": ODD_TEXT,
                "name": "odd",
                "description": ODD_TEXT,
                "model": "\\N",
                "metadata": {"team": ODD_TEXT, "list": [None, True, {"x": 1}]},
                "bindings": [
                    {
                        "definition_type": "gate",
                        "key": "odd",
                        "config": config,
                        "definition_contract_version": "\\N",
                    }
                ],
            }
        ],
    }
    assert _tallies(data(client.post(URL, headers=admin.headers, json=doc)))[1:] == (
        (1, 0, 0),
        (1, 0, 0),
    )
    agent = data(client.get(f"{API}/agents", headers=admin.headers))["items"][0]
    assert (agent["external_id"], agent["description"], agent["model"]) == (
        ODD_TEXT,
        ODD_TEXT,
        "\\N",
    )
    assert agent["metadata"] == doc["agents"][0]["metadata"]
    binding = data(client.get(f"{API}/agents/{agent['id']}/bindings", headers=admin.headers))
    assert [(b["config"], b["definition_contract_version"]) for b in binding["items"]] == [
        (config, "\\N")
    ]
    gate = data(client.get(f"{API}/contracts/definitions", headers=admin.headers))["items"][0]
    assert (gate["name"], gate["description"], gate["default_config"]) == (
        ODD_TEXT,
        ODD_TEXT,
        {"k": ODD_TEXT},
    )
    versions = data(
        client.get(f"{API}/contracts/definitions/{gate['id']}/versions", headers=admin.headers)
    )
    assert [v["config_schema"] for v in versions["items"]] == [True]
    assert _tallies(data(client.post(URL, headers=admin.headers, json=doc))) == (
        (0, 0, 1),
        (0, 0, 1),
        (0, 0, 1),
    )


@pytest.mark.parametrize(
    ("fmt", "text", "problem"),
    [
        (
            "json",
            '{"agents": [{"external_id": "a", "name": "n", "metadata": {"x": 1e400}}]}',
            "1.8e308",
        ),
        (
            "json",
            '{"agents": [{"external_id": "a", "name": "n", "metadata": {"x": "\\u0000"}}]}',
            "NUL",
        ),
        (
            "json",
            '{"agents": [{"external_id": "a", "name": "n", "metadata": {"x": "\\udc00"}}]}',
            "surrogate",
        ),
        ("yaml", 'agents:\n- external_id: a\n  name: n\n  metadata: {x: "\\0"}\n', "NUL"),
        ("yaml", "agents:\n- external_id: a\n  name: n\n  metadata: {x: .inf}\n", "Infinity"),
    ],
)
def test_cli_import_refuses_what_the_api_refuses(
    fmt: str,
    text: str,
    problem: str,
    tmp_path: Path,
    admin: Any,
    settings: Any,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Values the database cannot store: on PostgreSQL each was a traceback from COPY, on SQLite
    an infinity was stored as null. Refused as the API refuses them, before any write."""
    path = tmp_path / f"bad.{fmt}"
    path.write_text(text)
    with _cli_on(settings, monkeypatch) as run:
        refused = run(path, "--org-id", admin.org_id)
    assert refused.exit_code == 2, refused.output
    assert problem in refused.stderr and "nothing was written" in refused.stderr
    assert "Traceback" not in refused.output
    assert data(client.get(f"{API}/agents", headers=admin.headers))["total_count"] == 0
