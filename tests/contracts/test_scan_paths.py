"""The page's two ways to read a level give the same pages: its pairs probed one by one then
sorted (Postgres, for a level holding little of the scope), and the agents walked in name order
with one OR per definition (every other case, and all of SQLite).

Compared through HTTP on the same data, each path forced; on SQLite both are the walk.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import StatementError

from driftwarden.contracts import scan, scan_groups, scan_page
from tests.contracts.conftest import Seeder
from tests.contracts.helpers import API, data
from tests.support import ON_POSTGRES, make_tenant

URL = f"{API}/contracts/drift"
PATHS = ("probed", "walked")


def _world(seeder: Seeder) -> dict[str, Any]:
    """Every level, a missing bound, disabled rows, shared agent names, a builtin."""
    gate = seeder.definition("gate-a", "2.0.0")
    tone = seeder.definition("tone", "1.3.0", definition_type="evaluator")
    zero = seeder.definition("zero", "0.4.0", definition_type="run_type")
    shared = seeder.definition("shared", "3.1.0", builtin=True)
    bounds = ["2.0.0", "1.9.0", "v2", None, "2.0.1", "1.3.0", "0.3.9", "3.1.0", "3.0.0", "0.4.0"]
    agents = [seeder.agent(name) for name in ("mid", "alpha", "zeta", "alpha", "beta", "omega")]
    definitions = [gate, tone, zero, shared]
    cycle = itertools.cycle(bounds)
    for n, (agent, definition) in enumerate(itertools.product(agents, definitions)):
        seeder.bind(agent, definition, next(cycle), enabled=n % 5 != 2)
    return {"agent": agents[1]}


def _force(monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    monkeypatch.setattr(scan, "probes", lambda *_a, **_k: path == "probed")


QUERIES = [
    {"min_drift": min_drift, "include_healthy": healthy, "limit": limit, "offset": offset}
    for min_drift in ("none", "warning", "breaking", "invalid")
    for healthy in ("true", "false")
    for limit, offset in ((1, 0), (3, 2), (5, 7), (200, 0), (4, 30))
] + [{"definition_type": "evaluator", "include_healthy": "true"}, {"definition_type": "gate"}]


def _pages(client: TestClient, tenant: Any, agent: Any) -> list[dict[str, Any]]:
    queries = [*QUERIES, {"agent_id": str(agent), "include_healthy": "true", "limit": 2}]
    return [data(client.get(URL, headers=tenant.headers, params=q)) for q in queries]


def test_every_path_gives_the_same_pages(
    client: TestClient, admin: Any, seeder: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = _world(seeder)
    pages = {}
    for path in PATHS:
        with monkeypatch.context() as patch:
            _force(patch, path)
            pages[path] = _pages(client, admin, world["agent"])
    assert pages["probed"] == pages["walked"]
    everything = pages["probed"][3]  # min_drift none, healthy, limit 200
    assert everything["count"] == everything["total_count"] == 24
    assert {i["drift"] for i in everything["items"]} == {"none", "warning", "breaking", "invalid"}
    assert any(i["bound_contract_version"] is None for i in everything["items"])


def test_the_page_agrees_with_a_sort_of_every_item(
    client: TestClient, admin: Any, seeder: Seeder
) -> None:
    """An independent reference: every item, sorted by severity then agent name, key and id."""
    _world(seeder)
    rank = {"invalid": 0, "breaking": 1, "warning": 2, "none": 3}
    every = data(client.get(URL, headers=admin.headers, params={"min_drift": "none"}))["items"]
    expected = sorted(
        every,
        key=lambda i: (rank[i["severity"]], i["agent_name"], i["definition_key"], i["binding_id"]),
    )
    assert every == expected
    for limit, offset in ((5, 0), (5, 5), (7, 9), (3, 22)):
        params = {"min_drift": "none", "limit": limit, "offset": offset}
        page = data(client.get(URL, headers=admin.headers, params=params))
        assert page["items"] == expected[offset : offset + limit]


def test_enabled_only_pages_agree(
    seeder: Seeder, session_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Promotion's scope (enabled bindings only) through either path, in process."""
    _world(seeder)
    found = {}
    for path in PATHS:
        with monkeypatch.context() as patch, session_factory() as session:
            _force(patch, path)
            pages = [
                scan.scan_drift(session, org_id=seeder.org_id, enabled_only=True, **page)
                for page in ({"limit": None}, {"limit": 3, "offset": 2}, {"min_drift": "none"})
            ]
            found[path] = [[(i.binding_id, i.severity) for i in p.items] for p in pages]
    assert found["probed"] == found["walked"]
    with session_factory() as session:
        every = scan.scan_drift(session, org_id=seeder.org_id, limit=None).items
    enabled = [(i.binding_id, i.severity) for i in every if i.enabled]
    assert found["probed"][0] == enabled and 0 < len(enabled) < len(every)


def test_the_choice_follows_the_share_of_the_scope() -> None:
    assert scan_page.probes(279, wanted=200, scope=10_000)
    assert not scan_page.probes(1245, wanted=200, scope=10_000)
    assert not scan_page.probes(0, wanted=0, scope=0)


def test_statements_built_once_serve_each_scope_its_own_rows(
    seeder: Seeder, session_factory: Any, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grouped count and the probed page are built once per scope shape and reused with each
    scan's own values: two orgs, an agent scope and a type scope, scanned in turn, twice."""
    _force(monkeypatch, "probed")
    gate = seeder.definition("g", "2.0.0")
    tone = seeder.definition("tone", "1.0.0", definition_type="evaluator")
    mine = seeder.agent("mine")
    seeder.bind(mine, gate, "1.0.0")
    seeder.bind(seeder.agent("mine-too"), tone, "0.9.0")
    other = Seeder(session_factory, make_tenant(engine, name="Other").org_id)
    theirs = other.definition("g", "3.0.0")
    for name in ("theirs", "theirs-2"):
        other.bind(other.agent(name), theirs, "2.0.0")
    scans = {
        "mine": {"org_id": seeder.org_id},
        "theirs": {"org_id": other.org_id},
        "my agent": {"org_id": seeder.org_id, "agent_id": mine},
        "my evaluators": {"org_id": seeder.org_id, "definition_type": "evaluator"},
        "their evaluators": {"org_id": other.org_id, "definition_type": "evaluator"},
    }
    expected = {
        "mine": ["mine", "mine-too"],
        "theirs": ["theirs", "theirs-2"],
        "my agent": ["mine"],
        "my evaluators": ["mine-too"],
        "their evaluators": [],
    }
    with session_factory() as session:
        for _ in range(2):
            found = {
                name: [i.agent_name for i in scan.scan_drift(session, **scope).items]
                for name, scope in scans.items()
            }
            assert found == expected


@pytest.mark.skipif(not ON_POSTGRES, reason="the built statements are Postgres's (arrays)")
def test_a_built_statement_runs_only_with_its_scope_given(engine: Any) -> None:
    """Its parameters have no values: left out, the execution fails, never reusing a value."""
    scope = {
        "org_id": uuid.uuid4(),
        "agent_id": None,
        "definition_ids": None,
        "enabled_only": False,
    }
    built = scan_groups._grouped_per_definition(scan_page.template_scope(scope))
    with engine.connect() as conn:
        with pytest.raises(StatementError, match="scope_org_id"):
            conn.execute(built)
        assert conn.execute(built, scan_page.scope_params(scope)).all() == []
