"""Drift promotion over HTTP.

Promotion creates, reuses, auto-resolves, dry-runs, respects limit, policy and enabled.
docs/reference/resources.md#drift-promotion
"""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from driftwarden.api.models import ApiAuditLog
from driftwarden.db.engine import make_session_factory
from driftwarden.db.models import metadata
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.patterns.models import IssuePattern
from driftwarden.patterns.promotion import dedupe_key
from driftwarden.scheduler.models import DriftPolicy
from tests.patterns.conftest import T0

PROMOTE = "/api/v1/contracts/drift/promote-patterns"


def _promote(client: TestClient, who, **body) -> dict:
    response = client.post(PROMOTE, headers=who.headers, json=body)
    assert response.status_code == 200, response.text
    return response.json()["data"]


@pytest.fixture
def drifted(world):
    """Two agents and their bindings.

    One breaking, one invalid, one warning, one healthy, one disabled breaking binding.
    """
    ana, bob = world.agent("ana"), world.agent("bob")
    pii, tone, size = (
        world.definition("pii-filter", "2.0.0"),
        world.definition("tone", "1.3.0"),
        world.definition("size", "1.0.0", "evaluator"),
    )
    return {
        "breaking": world.bind(ana, pii, "1.4.2"),
        "invalid": world.bind(bob, pii, "v1.2"),
        "warning": world.bind(ana, tone, "1.2.0"),
        "healthy": world.bind(bob, tone, "1.3.0"),
        "disabled": world.bind(bob, size, "0.9.0", enabled=False),
        "agents": (ana, bob),
        "definitions": (pii, tone, size),
    }


def test_first_promotion_creates_second_reuses(
    client: TestClient, member, world, drifted, clock
) -> None:
    first = _promote(client, member, min_drift="warning")
    assert (first["scanned_item_count"], first["eligible_item_count"]) == (
        5,
        3,
    )  # the disabled one is scanned too
    assert (
        first["created_pattern_count"],
        first["reused_pattern_count"],
        first["resolved_pattern_count"],
    ) == (3, 0, 0)
    patterns = {p.dedupe_key: p for p in world.patterns()}
    breaking = patterns[f"contract_drift:{drifted['breaking']}:1.4.2:2.0.0"]
    assert breaking.title == "Contract drift (breaking): gate 'pii-filter' 1.4.2 → 2.0.0"
    assert (
        breaking.status,
        breaking.priority,
        breaking.primary_tag,
        breaking.occurrence_count,
    ) == ("detected", "high", "contract_drift", 1)
    assert breaking.agent_id == drifted["agents"][0] and breaking.evidence["drift"] == "breaking"
    assert breaking.evidence["binding_id"] == str(drifted["breaking"])
    assert patterns[f"contract_drift:{drifted['warning']}:1.2.0:1.3.0"].priority == "medium"
    assert patterns[f"contract_drift:{drifted['invalid']}:v1.2:2.0.0"].priority == "high"
    assert first["pattern_ids"] == [
        str(p.id)
        for p in sorted(
            patterns.values(),
            key=lambda p: ["invalid", "breaking", "warning"].index(p.evidence["drift"]),
        )
    ]
    promoted = world.outbox("contract_drift.patterns_promoted")
    assert len(promoted) == 1 and first["notification"]["queued"] is True
    assert first["notification"]["outbox_ids"] == [str(promoted[0].id)]
    assert json.loads(promoted[0].body)["data"]["created_pattern_count"] == 3

    clock.advance(hours=1)
    second = _promote(client, member, min_drift="warning")
    assert (second["created_pattern_count"], second["reused_pattern_count"]) == (0, 3)
    assert second["pattern_ids"] == first["pattern_ids"]
    assert second["notification"] == {
        "event_type": "contract_drift.patterns_promoted",
        "queued": False,
        "outbox_ids": [],
        "skipped_reason": "nothing_created",
        "status_changed": {
            "event_type": "issue_pattern.status_changed",
            "queued": False,
            "outbox_ids": [],
            "skipped_reason": "nothing_resolved",
        },
    }
    after = world.patterns()
    assert len(after) == 3 and all(p.occurrence_count == 2 for p in after)
    assert all(p.first_seen_at == T0 and p.last_seen_at == clock.now() for p in after)
    assert len(world.outbox("contract_drift.patterns_promoted")) == 1


def test_synced_binding_pattern_auto_resolves(
    client: TestClient, member, world, drifted, clock
) -> None:
    created = _promote(client, member, min_drift="warning")
    world.set_bound(drifted["breaking"], "2.0.0")  # synced: no drift any more
    world.set_bound(drifted["warning"], "1.2.1")  # still drifting, but not at those versions
    world.unbind(drifted["invalid"])
    clock.advance(minutes=5)
    kept_open = _promote(client, member, min_drift="warning", auto_resolve=False)
    assert (
        kept_open["resolved_pattern_count"] == 0 and kept_open["created_pattern_count"] == 1
    )  # the new warning
    assert [p.status for p in world.patterns()] == ["detected"] * 4
    result = _promote(client, member, min_drift="warning")
    assert (
        result["created_pattern_count"],
        result["reused_pattern_count"],
        result["resolved_pattern_count"],
    ) == (0, 1, 3)
    assert set(result["resolved_pattern_ids"]) == set(created["pattern_ids"])
    resolved = [p for p in world.patterns() if p.status == "resolved"]
    assert {p.id for p in resolved} == {uuid.UUID(i) for i in created["pattern_ids"]}
    notes = {p.evidence["drift"]: p.status_history[-1] for p in resolved}
    assert notes["breaking"]["from"] == "detected" and notes["breaking"]["to"] == "resolved"
    assert "no longer at these versions" in notes["breaking"]["note"]
    assert "no longer exists" in notes["invalid"]["note"]
    assert notes["warning"]["at"] == "2026-11-25T12:05:00Z"
    changed = world.outbox("issue_pattern.status_changed")
    assert len(changed) == 1 and result["notification"]["status_changed"]["outbox_ids"] == [
        str(changed[0].id)
    ]
    data = json.loads(changed[0].body)["data"]
    assert (
        data["pattern_count"] == 3 and data["to"] == "resolved" and data["reason"] == "auto_resolve"
    )


def test_dry_run_writes_nothing(client: TestClient, member, world, drifted, engine, clock) -> None:
    _promote(client, member, min_drift="breaking")
    world.set_bound(drifted["breaking"], "2.0.0")
    world.definition("new", "1.0.0")
    world.bind(drifted["agents"][0], world.definition("fresh", "3.0.0"), "2.0.0")

    def snapshot() -> tuple:
        with make_session_factory(engine)() as session:
            rows = session.execute(
                select(
                    IssuePattern.id,
                    IssuePattern.status,
                    IssuePattern.occurrence_count,
                    IssuePattern.updated_at,
                    IssuePattern.last_seen_at,
                    IssuePattern.status_history,
                ).order_by(IssuePattern.id)
            ).all()
            counts = {
                table.name: session.scalar(select(func.count()).select_from(table))
                for table in metadata.sorted_tables
                if table.name != "api_audit_logs"
            }
            return [tuple(r) for r in rows], counts

    before, audited = snapshot(), world.count(ApiAuditLog)
    clock.advance(hours=1)
    dry = _promote(client, member, min_drift="warning", dry_run=True)
    assert snapshot() == before
    assert dry["dry_run"] is True and dry["notification"]["queued"] is False
    # The request's transaction ended before its audit row was written
    # (a held SQLite lock would lose it).
    assert world.count(ApiAuditLog) == audited + 1
    assert dry["notification"]["skipped_reason"] == "dry_run"
    real = _promote(client, member, min_drift="warning")
    for field in (
        "created_pattern_count",
        "reused_pattern_count",
        "resolved_pattern_count",
        "eligible_item_count",
        "resolved_pattern_ids",
    ):
        assert dry[field] == real[field], field
    assert (
        real["created_pattern_count"],
        real["reused_pattern_count"],
        real["resolved_pattern_count"],
    ) == (2, 1, 1)
    assert set(dry["pattern_ids"]) < set(
        real["pattern_ids"]
    )  # a dry run has no ids for patterns not yet created


def test_disabled_bindings_are_never_promoted(client: TestClient, member, world, drifted) -> None:
    result = _promote(client, member, min_drift="warning", limit=1000)
    keys = {p.dedupe_key for p in world.patterns()}
    assert not any(str(drifted["disabled"]) in key for key in keys)
    assert result["eligible_item_count"] == 3
    assert not any(p.evidence["enabled"] is False for p in world.patterns())


def test_scanned_count_includes_disabled_bindings(
    client: TestClient, member, world, drifted
) -> None:
    """Disabled bindings are scanned (and reported) but never promoted.

    docs/reference/resources.md#drift-scan
    docs/reference/resources.md#drift-promotion
    """
    scan = client.get("/api/v1/contracts/drift", headers=member.headers).json()["data"]
    dry = _promote(client, member, min_drift="warning", dry_run=True)
    assert dry["scanned_item_count"] == scan["checked_binding_count"] == 5
    bob = drifted["agents"][1]  # invalid (enabled), healthy (enabled), breaking (disabled)
    scoped = _promote(client, member, min_drift="warning", agent_id=str(bob))
    assert (
        scoped["scanned_item_count"],
        scoped["eligible_item_count"],
        scoped["created_pattern_count"],
    ) == (3, 1, 1)


def test_limit_keeps_the_most_severe(client: TestClient, member, world, drifted) -> None:
    one = _promote(client, member, min_drift="warning", limit=1)
    assert one["eligible_item_count"] == 1 and [p.evidence["drift"] for p in world.patterns()] == [
        "invalid"
    ]
    two = _promote(client, member, min_drift="warning", limit=2, auto_resolve=False)
    assert (two["created_pattern_count"], two["reused_pattern_count"]) == (1, 1)
    assert sorted(p.evidence["drift"] for p in world.patterns()) == ["breaking", "invalid"]


def test_policy_defaults_apply(client: TestClient, member, world, drifted, engine) -> None:
    default = _promote(client, member, dry_run=True)
    assert (default["min_drift"], default["limit"], default["created_pattern_count"]) == (
        "breaking",
        200,
        2,
    )
    with make_session_factory(engine)() as session:
        session.add(
            DriftPolicy(
                org_id=world.org_id,
                enabled=True,
                min_drift="warning",
                promote_to_patterns=True,
                scan_limit=2,
                schedule_name="daily",
                schedule_window_minutes=1440,
                alert_enabled=False,
                alert_max_dedupe_hit_rate=0.7,
                alert_min_execution_rate=0.5,
                alert_cooldown_minutes=60,
                created_at=T0,
                updated_at=T0,
            )
        )
        session.commit()
    from_policy = _promote(client, member, dry_run=True)
    assert (from_policy["min_drift"], from_policy["limit"], from_policy["eligible_item_count"]) == (
        "warning",
        2,
        2,
    )
    explicit = _promote(client, member, dry_run=True, min_drift="invalid", limit=5)
    assert (explicit["min_drift"], explicit["limit"], explicit["eligible_item_count"]) == (
        "invalid",
        5,
        1,
    )


def test_agent_scope(client: TestClient, member, world, drifted) -> None:
    ana, bob = drifted["agents"]
    _promote(client, member, min_drift="warning")
    world.set_bound(drifted["invalid"], "2.0.0")  # bob's drift is gone
    scoped = _promote(client, member, min_drift="warning", agent_id=str(ana))
    assert (scoped["reused_pattern_count"], scoped["resolved_pattern_count"]) == (2, 0)
    assert _promote(client, member, agent_id=str(bob))["resolved_pattern_count"] == 1


def test_validation_roles_and_audit(
    client: TestClient, admin, member, world, drifted, engine
) -> None:
    from tests.support import make_tenant

    viewer = make_tenant(engine, role="viewer", org_id=admin.org_id)
    assert client.post(PROMOTE, headers=viewer.headers, json={}).status_code == 403
    assert client.post(PROMOTE, headers=member.headers, json={"limit": 1001}).status_code == 422
    assert (
        client.post(PROMOTE, headers=member.headers, json={"min_drift": "none"}).status_code == 422
    )
    stranger = make_tenant(engine, role="admin", name="Other")
    foreign = client.post(
        PROMOTE, headers=stranger.headers, json={"agent_id": str(drifted["agents"][0])}
    )
    assert foreign.status_code == 404 and world.patterns() == []
    response = client.post(
        PROMOTE, headers=member.headers, json={"min_drift": "warning"}, params={"ignored": "1"}
    ).headers["x-request-id"]
    with make_session_factory(engine)() as session:
        audit = session.scalars(select(ApiAuditLog).where(ApiAuditLog.request_id == response)).one()
        assert audit.status_code == 200 and audit.org_id == world.org_id
        assert session.scalars(select(NotificationOutbox.request_id)).all() == [response]


def test_long_versions_get_a_hashed_key() -> None:
    binding = uuid.uuid4()
    assert dedupe_key(binding, "1.0.0", "2.0.0") == f"contract_drift:{binding}:1.0.0:2.0.0"
    assert dedupe_key(binding, None, "1.0.0") == f"contract_drift:{binding}::1.0.0"
    long = dedupe_key(binding, "1.0.0-" + "a" * 250, "2.0.0-" + "b" * 250)
    assert len(long) <= 500 and long.startswith(f"contract_drift:{binding}:sha256:")
    assert long != dedupe_key(binding, "1.0.0-" + "a" * 250, "2.0.0-" + "c" * 250)


def test_statement_count_does_not_grow_with_findings(
    client: TestClient, member, world, engine
) -> None:
    definition = world.definition("big", "2.0.0")

    def promote_counting() -> int:
        seen: list[str] = []
        listener = lambda _conn, _cursor, statement, *_: seen.append(statement)  # noqa: E731 - a one-line event listener
        event.listen(engine, "before_cursor_execute", listener)
        try:
            _promote(client, member, limit=1000)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    def add(agents: int) -> None:
        for n in range(agents):
            world.bind(world.agent(f"a{len(world.patterns())}-{n}"), definition, "1.0.0")

    add(5)
    create_5, reuse_5 = promote_counting(), promote_counting()
    add(60)
    mixed_65, reuse_65 = promote_counting(), promote_counting()
    assert len(world.patterns()) == 65 and all(
        p.occurrence_count in (2, 4) for p in world.patterns()
    )
    assert reuse_65 == reuse_5
    # 17: the API key is looked up in a transaction of its own, before the body is read.
    assert max(create_5, mixed_65, reuse_65) <= 17, (create_5, reuse_5, mixed_65, reuse_65)
