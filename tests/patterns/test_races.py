"""Real races on Postgres: concurrent promoters and upserters converge on one open pattern per key."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest

from driftwarden.patterns import service as patterns_service
from driftwarden.patterns.models import IssuePattern
from driftwarden.notifications.models import NotificationOutbox
from tests.patterns.conftest import T0
from tests.support import ON_POSTGRES

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not ON_POSTGRES, reason="needs real cross-connection races (RUN_DB_INTEGRATION=1)")]

WORKERS = 8


def _race(session_factory: Any, work: Callable[[Any], Any]) -> list[Any]:
    """Run `work(session)` on WORKERS connections released at the same instant; each commits its own."""
    barrier = threading.Barrier(WORKERS)

    def run(_: int) -> Any:
        with session_factory() as session:
            session.connection()  # hold a connection before the start line
            barrier.wait(timeout=30)
            result = work(session)
            session.commit()
            return result

    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(run, range(WORKERS)))


def test_eight_concurrent_promotions_make_one_open_pattern_per_finding(session_factory, settings, world) -> None:
    definitions = [world.definition(f"def-{n}", "2.0.0") for n in range(5)]
    for n in range(12):
        agent = world.agent(f"agent-{n:02d}")
        for definition in definitions:
            world.bind(agent, definition, "1.0.0")
    results = _race(session_factory, lambda session: patterns_service.promote_drift(
        session, org_id=world.org_id, agent_id=None, min_drift="warning", limit=1000, dry_run=False,
        auto_resolve=True, now=T0, settings=settings))
    patterns = world.patterns()
    assert len(patterns) == 60 and len({p.dedupe_key for p in patterns}) == 60
    assert all(p.status == "detected" for p in patterns)
    assert sum(r["created_pattern_count"] for r in results) == 60
    assert all(r["created_pattern_count"] + r["reused_pattern_count"] == 60 for r in results)
    assert sum(p.occurrence_count for p in patterns) == WORKERS * 60
    assert all(sorted(r["pattern_ids"]) == sorted(str(p.id) for p in patterns) for r in results)
    promoted = world.outbox("contract_drift.patterns_promoted")
    assert len(promoted) == sum(1 for r in results if r["created_pattern_count"])


def test_eight_concurrent_upserts_converge(session_factory, world) -> None:
    agent = world.agent("bot")
    results = _race(session_factory, lambda session: patterns_service.upsert_open_pattern(
        session, org_id=world.org_id, agent_id=agent, dedupe_key="contract_drift_alert_delivery:x:daily",
        primary_tag="contract_drift_alert_delivery", title="Alert delivery failing", priority="high",
        evidence={"error": "boom"}, now=T0)[1])
    assert sorted(results) == [False] * (WORKERS - 1) + [True]
    (pattern,) = world.patterns()
    assert pattern.occurrence_count == WORKERS and pattern.status == "detected"
    assert world.count(NotificationOutbox) == 0 and world.count(IssuePattern) == 1
