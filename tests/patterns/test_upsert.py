"""upsert_open_pattern: the cross-domain entry point (escalation uses it), called directly."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from driftwarden.patterns import service as patterns_service
from driftwarden.patterns.models import IssuePattern
from tests.patterns.conftest import T0

KEY = "contract_drift_alert_delivery:org:daily"


def _upsert(session_factory, world, agent_id, *, error: str, at=T0):
    with session_factory() as session:
        pattern, created = patterns_service.upsert_open_pattern(
            session,
            org_id=world.org_id,
            agent_id=agent_id,
            dedupe_key=KEY,
            primary_tag="contract_drift_alert_delivery",
            title="Drift alert delivery failing",
            priority="high",
            evidence={"error": error},
            now=at,
            related_tags=["notify"],
        )
        session.commit()
        return pattern.id, created, pattern.occurrence_count, pattern.evidence, pattern.last_seen_at


def test_creates_then_reuses_with_latest_evidence(session_factory, world) -> None:
    first = _upsert(session_factory, world, None, error="timeout")
    assert first[1:4] == (True, 1, {"error": "timeout"})
    later = T0 + timedelta(hours=2)
    second = _upsert(session_factory, world, None, error="HTTP 503", at=later)
    assert second == (first[0], False, 2, {"error": "HTTP 503"}, later)
    (row,) = world.patterns()
    assert row.agent_id is None and row.first_seen_at == T0 and row.related_tags == ["notify"]
    assert row.status == "detected" and [h["to"] for h in row.status_history] == ["detected"]


def test_a_closed_pattern_is_not_reused(session_factory, world) -> None:
    agent = world.agent("bot")
    first_id = _upsert(session_factory, world, agent, error="boom")[0]
    with session_factory() as session:
        session.execute(
            update(IssuePattern).where(IssuePattern.id == first_id).values(status="resolved")
        )
        session.commit()
    again = _upsert(session_factory, world, agent, error="boom again")
    assert again[1] is True and again[0] != first_id
    assert sorted(p.status for p in world.patterns()) == ["detected", "resolved"]
