"""scan_drift called directly, as the patterns domain does: counts, ordering, paging, filters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from driftwarden.contracts.service import scan_drift
from tests.contracts.conftest import Seeder
from tests.support import make_tenant


def _world(seeder: Seeder) -> dict[str, Any]:
    gate = seeder.definition("pii-filter", "2.0.0")
    evaluator = seeder.definition("tone", "1.3.0", definition_type="evaluator")
    zero = seeder.definition("beta-gate", "0.4.0")
    alice, bob, carol = seeder.agent("alice"), seeder.agent("bob"), seeder.agent("carol")
    ids = {
        "alice_gate": seeder.bind(alice, gate, "1.4.2"),  # breaking
        "alice_eval": seeder.bind(alice, evaluator, "1.3.0"),  # none
        "bob_gate": seeder.bind(bob, gate, "2.0.0+b.7"),  # none
        "bob_eval": seeder.bind(bob, evaluator, "1.2.0", enabled=False),  # warning, disabled
        "bob_zero": seeder.bind(bob, zero, "0.3.9"),  # breaking
        "carol_gate": seeder.bind(carol, gate, "v2"),  # invalid
        "carol_eval": seeder.bind(carol, evaluator, None),  # invalid
        "carol_zero": seeder.bind(carol, zero, "0.4.0-rc.1"),  # warning
    }
    return {"agents": (alice, bob, carol), "ids": ids}


def _keys(scan: Any) -> list[tuple[str, str, str]]:
    return [(i.drift, i.agent_name, i.definition_key) for i in scan.items]


def test_counts_cover_every_binding_and_items_are_ordered(
    seeder: Seeder, session_factory: Any
) -> None:
    _world(seeder)
    with session_factory() as session:
        scan = scan_drift(session, org_id=seeder.org_id)
    assert scan.counts == {"none": 2, "warning": 2, "breaking": 2, "invalid": 2}
    assert (scan.checked_agent_count, scan.checked_binding_count, scan.total_count) == (3, 8, 6)
    assert _keys(scan) == [
        ("invalid", "carol", "pii-filter"),
        ("invalid", "carol", "tone"),
        ("breaking", "alice", "pii-filter"),
        ("breaking", "bob", "beta-gate"),
        ("warning", "bob", "tone"),
        ("warning", "carol", "beta-gate"),
    ]
    disabled = [i for i in scan.items if not i.enabled]
    assert [(i.agent_name, i.definition_key) for i in disabled] == [("bob", "tone")]
    item = scan.items[2].as_dict()
    assert item["bound_contract_version"] == "1.4.2" and item["current_contract_version"] == "2.0.0"
    assert item["reason"] == "major version changed 1.4.2 → 2.0.0" and isinstance(
        item["binding_id"], str
    )
    assert set(item) == {
        "binding_id",
        "agent_id",
        "agent_name",
        "definition_id",
        "definition_type",
        "definition_key",
        "bound_contract_version",
        "current_contract_version",
        "drift",
        "reason",
        "enabled",
        # contract content: null/false/equal to drift when there is no schema
        "config_valid",
        "config_errors",
        "undeclared_breaking",
        "severity",
    }
    assert (
        item["config_valid"],
        item["config_errors"],
        item["undeclared_breaking"],
        item["severity"],
    ) == (None, None, False, item["drift"])


def test_paging_crosses_severity_levels(seeder: Seeder, session_factory: Any) -> None:
    _world(seeder)
    with session_factory() as session:
        full = _keys(scan_drift(session, org_id=seeder.org_id, include_healthy=True, limit=None))
        pages = [
            _keys(
                scan_drift(session, org_id=seeder.org_id, include_healthy=True, limit=3, offset=o)
            )
            for o in (0, 3, 6, 9)
        ]
        counted = scan_drift(session, org_id=seeder.org_id, limit=1)
    assert len(full) == 8 and full[-2:] == [
        ("none", "alice", "tone"),
        ("none", "bob", "pii-filter"),
    ]
    assert pages[0] + pages[1] + pages[2] == full and pages[3] == []
    assert len(counted.items) == 1 and counted.counts["warning"] == 2 and counted.total_count == 6


def test_filters(seeder: Seeder, session_factory: Any) -> None:
    world = _world(seeder)
    alice, bob, _ = world["agents"]
    with session_factory() as session:
        breaking = scan_drift(session, org_id=seeder.org_id, min_drift="breaking")
        invalid = scan_drift(session, org_id=seeder.org_id, min_drift="invalid")
        enabled = scan_drift(session, org_id=seeder.org_id, enabled_only=True, limit=None)
        of_bob = scan_drift(session, org_id=seeder.org_id, agent_id=bob, include_healthy=True)
        evaluators = scan_drift(session, org_id=seeder.org_id, definition_type="evaluator")
    assert [d for d, _, _ in _keys(breaking)] == ["invalid", "invalid", "breaking", "breaking"]
    assert breaking.counts["warning"] == 2 and breaking.total_count == 4
    assert invalid.total_count == 2 and {i.drift for i in invalid.items} == {"invalid"}
    assert enabled.checked_binding_count == 7 and all(i.enabled for i in enabled.items)
    assert of_bob.checked_agent_count == 1 and {i.agent_id for i in of_bob.items} == {bob}
    assert of_bob.counts == {"none": 1, "warning": 1, "breaking": 1, "invalid": 0}
    assert evaluators.counts == {"none": 1, "warning": 1, "breaking": 0, "invalid": 1}
    assert {i.definition_type for i in evaluators.items} == {"evaluator"}


def test_org_isolation_and_builtin_definitions(
    seeder: Seeder, session_factory: Any, engine: Any
) -> None:
    builtin = seeder.definition("shared-gate", "3.0.0", builtin=True)
    seeder.bind(seeder.agent("alice"), builtin, "2.9.0")
    other = Seeder(session_factory, make_tenant(engine, name="Other").org_id)
    other.bind(other.agent("zed"), builtin, "3.0.0")
    with session_factory() as session:
        mine = scan_drift(session, org_id=seeder.org_id, include_healthy=True)
        theirs = scan_drift(session, org_id=other.org_id, include_healthy=True)
    assert mine.counts["breaking"] == 1 and mine.checked_binding_count == 1
    assert _keys(theirs) == [("none", "zed", "shared-gate")] and theirs.checked_agent_count == 1


def test_query_count_does_not_grow_with_bindings(
    seeder: Seeder, session_factory: Any, engine: Any
) -> None:
    gate = seeder.definition("g", "2.0.0")
    for n in range(40):
        seeder.bind(seeder.agent(f"a{n:02d}"), gate, ["1.0.0", "2.0.0", "2.1.0", "x"][n % 4])
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with session_factory() as session:
        scan = scan_drift(session, org_id=seeder.org_id, include_healthy=True, limit=None)
    assert len(scan.items) == 40 and scan.counts == {
        "none": 10,
        "warning": 10,
        "breaking": 10,
        "invalid": 10,
    }
    # definitions, grouped counts (with the agent count), then one page query per level returned
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2 + 4


def test_many_distinct_versions_take_the_streamed_path(
    seeder: Seeder, session_factory: Any, monkeypatch: Any
) -> None:
    """Build metadata per binding makes every pair distinct.

    The page is picked from the ordered stream.
    """
    from driftwarden.contracts import scan_page

    _world(seeder)
    gate = seeder.definition("unique", "3.0.0")
    for n in range(12):
        seeder.bind(seeder.agent(f"u{n:02d}"), gate, f"{2 + n % 2}.0.0+sha.{n:04x}")
    pages = [
        (limit, offset, healthy)
        for limit in (1, 4, None)
        for offset in (0, 3, 9)
        for healthy in (False, True)
    ]
    with session_factory() as session:
        in_sql = [
            _keys(
                scan_drift(session, org_id=seeder.org_id, limit=lim, offset=off, include_healthy=h)
            )
            for lim, off, h in pages
        ]
        monkeypatch.setattr(scan_page, "MAX_PAIRS_IN_SQL", 0)
        streamed = [
            _keys(
                scan_drift(session, org_id=seeder.org_id, limit=lim, offset=off, include_healthy=h)
            )
            for lim, off, h in pages
        ]
    assert streamed == in_sql
    assert in_sql[pages.index((None, 0, True))].count(("breaking", "u00", "unique")) == 1
    assert sum(len(p) for p in in_sql) > 50
