"""The scan's one grouped statement and its caches: agent counts, answers across scans, order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from driftwarden.contracts import content as content_rules
from driftwarden.contracts.models import ContractDefinition
from driftwarden.contracts.service import scan_drift
from tests.contracts.conftest import Seeder


def _summary(scan: Any) -> tuple[Any, ...]:
    items = [(i.agent_name, i.definition_key, i.drift, i.reason, i.severity) for i in scan.items]
    return scan.checked_agent_count, scan.counts, scan.severity_counts, scan.total_count, items


def test_agent_count_follows_the_scope(seeder: Seeder, session_factory: Any) -> None:
    gate = seeder.definition("pii-filter", "2.0.0")
    seeder.bind(seeder.agent("on"), gate, "1.0.0")
    seeder.bind(seeder.agent("off"), gate, "1.0.0", enabled=False)
    seeder.agent("unbound")
    with session_factory() as session:
        every = scan_drift(session, org_id=seeder.org_id)
        enabled = scan_drift(session, org_id=seeder.org_id, enabled_only=True)
        evaluators = scan_drift(session, org_id=seeder.org_id, definition_type="evaluator")
    assert (every.checked_agent_count, every.checked_binding_count) == (2, 2)
    assert (enabled.checked_agent_count, enabled.checked_binding_count) == (1, 1)
    assert enabled.scanned_binding_count == 2  # disabled bindings are scanned, not counted
    assert (evaluators.checked_agent_count, evaluators.checked_binding_count) == (0, 0)
    assert evaluators.items == [] and evaluators.counts == dict.fromkeys(evaluators.counts, 0)


def test_cached_classification_gives_the_answers_of_a_cold_one(
    seeder: Seeder, session_factory: Any
) -> None:
    gate = seeder.definition("pii-filter", "2.0.0")
    tone = seeder.definition("tone", "1.3.0", definition_type="evaluator")
    for n, bound in enumerate(["1.4.2", "2.0.0", "2.0.0+b.1", "v2", None, "2.1.0"]):
        agent = seeder.agent(f"a{n}")
        seeder.bind(agent, gate, bound)
        seeder.bind(agent, tone, bound, enabled=n % 2 == 0)
    with session_factory() as session:
        content_rules.versions_only.cache_clear()
        cold = _summary(scan_drift(session, org_id=seeder.org_id, include_healthy=True))
        warm = _summary(scan_drift(session, org_id=seeder.org_id, include_healthy=True))
    assert warm == cold and content_rules.versions_only.cache_info().hits > 0
    assert cold[1] == {"none": 2, "warning": 2, "breaking": 4, "invalid": 4}


def test_a_new_current_version_is_judged_afresh(seeder: Seeder, session_factory: Any) -> None:
    """The cache is keyed by the versions, so moving a definition on changes the answer."""
    gate = seeder.definition("pii-filter", "2.0.0")
    seeder.bind(seeder.agent("alice"), gate, "2.0.0")
    with session_factory() as session:
        before = scan_drift(session, org_id=seeder.org_id, include_healthy=True)
        session.execute(
            update(ContractDefinition)
            .where(ContractDefinition.id == gate)
            .values(contract_version="3.0.0")
        )
        after = scan_drift(session, org_id=seeder.org_id, include_healthy=True)
    assert [(i.drift, i.current_contract_version) for i in before.items] == [("none", "2.0.0")]
    assert [(i.drift, i.reason) for i in after.items] == [
        ("breaking", "major version changed 2.0.0 → 3.0.0")
    ]


def test_agents_sharing_a_name_interleave_by_definition_key(
    seeder: Seeder, session_factory: Any
) -> None:
    """Order is agent name, then definition key, then binding id: not one agent after another."""
    first, second = seeder.definition("a-gate", "2.0.0"), seeder.definition("b-gate", "2.0.0")
    twins = [seeder.agent("twin"), seeder.agent("twin")]
    bindings = {
        (agent, d): seeder.bind(agent, d, "1.0.0") for agent in twins for d in (first, second)
    }
    seeder.bind(seeder.agent("alpha"), second, "1.0.0")
    with session_factory() as session:
        pages = [
            scan_drift(session, org_id=seeder.org_id, limit=2, offset=offset).items
            for offset in (0, 2, 4)
        ]
    items = [i for page in pages for i in page]
    assert [(i.agent_name, i.definition_key) for i in items] == [
        ("alpha", "b-gate"),
        ("twin", "a-gate"),
        ("twin", "a-gate"),
        ("twin", "b-gate"),
        ("twin", "b-gate"),
    ]
    for key, definition in (("a-gate", first), ("b-gate", second)):
        ids = [i.binding_id for i in items if i.definition_key == key and i.agent_name == "twin"]
        assert ids == sorted(bindings[(agent, definition)] for agent in twins)
