"""Real races on Postgres.

Concurrent promoters and upserters converge on one open pattern per key.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import create_engine, event, update
from sqlalchemy.pool import NullPool

from driftwarden.notifications.models import NotificationOutbox
from driftwarden.patterns import service as patterns_service
from driftwarden.patterns.models import IssuePattern
from tests.patterns.conftest import T0
from tests.support import ON_POSTGRES

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not ON_POSTGRES, reason="needs real cross-connection races (RUN_DB_INTEGRATION=1)"
    ),
]

WORKERS = 8


def _race(session_factory: Any, work: Callable[[Any], Any]) -> list[Any]:
    """Run `work(session)` on WORKERS connections released at the same instant.

    Each commits its own.
    """
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


def test_eight_concurrent_promotions_make_one_open_pattern_per_finding(
    session_factory, settings, world
) -> None:
    definitions = [world.definition(f"def-{n}", "2.0.0") for n in range(5)]
    for n in range(12):
        agent = world.agent(f"agent-{n:02d}")
        for definition in definitions:
            world.bind(agent, definition, "1.0.0")
    results = _race(
        session_factory,
        lambda session: patterns_service.promote_drift(
            session,
            org_id=world.org_id,
            agent_id=None,
            min_drift="warning",
            limit=1000,
            dry_run=False,
            auto_resolve=True,
            now=T0,
            settings=settings,
        ),
    )
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
    results = _race(
        session_factory,
        lambda session: patterns_service.upsert_open_pattern(
            session,
            org_id=world.org_id,
            agent_id=agent,
            dedupe_key="contract_drift_alert_delivery:x:daily",
            primary_tag="contract_drift_alert_delivery",
            title="Alert delivery failing",
            priority="high",
            evidence={"error": "boom"},
            now=T0,
        )[1],
    )
    assert sorted(results) == [False] * (WORKERS - 1) + [True]
    (pattern,) = world.patterns()
    assert pattern.occurrence_count == WORKERS and pattern.status == "detected"
    assert world.count(NotificationOutbox) == 0 and world.count(IssuePattern) == 1


@contextmanager
def _closed_by_someone_else(
    engine: Any, pattern_id: uuid.UUID, *, after: Callable[[str], bool]
) -> Iterator[list]:
    """Another connection moves the pattern to wont_fix.

    Right after the first statement matching `after`.
    """
    other, fired = create_engine(engine.url, poolclass=NullPool), []

    def close(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not fired and after(statement):
            fired.append(statement)
            with other.begin() as connection:
                connection.execute(
                    update(IssuePattern)
                    .where(IssuePattern.id == pattern_id)
                    .values(status="wont_fix")
                )

    event.listen(engine, "after_cursor_execute", close)
    try:
        yield fired
    finally:
        event.remove(engine, "after_cursor_execute", close)
        other.dispose()


def test_upsert_claims_again_when_the_open_pattern_closes_under_it(
    session_factory, engine, world
) -> None:
    key = "contract_drift_alert_delivery:y:daily"

    def upsert() -> tuple[Any, bool]:
        with session_factory() as session:
            pattern, created = patterns_service.upsert_open_pattern(
                session,
                org_id=world.org_id,
                agent_id=None,
                dedupe_key=key,
                primary_tag="contract_drift_alert_delivery",
                title="Alert delivery failing",
                priority="high",
                evidence={"error": "boom"},
                now=T0,
            )
            session.commit()
            return pattern.id, created

    first_id, _ = upsert()
    with _closed_by_someone_else(engine, first_id, after=lambda sql: "ON CONFLICT" in sql) as fired:
        second_id, created = upsert()  # its INSERT saw the open pattern; the lock finds it closed
    assert fired and created and second_id != first_id
    assert sorted(p.status for p in world.patterns()) == ["detected", "wont_fix"]


def test_a_pattern_closed_during_a_promotion_is_recreated_not_lost(
    session_factory, settings, engine, world
) -> None:
    definition = world.definition("gate", "2.0.0")
    for n in range(3):
        world.bind(world.agent(f"agent-{n}"), definition, "1.0.0")

    def promote() -> dict:
        with session_factory() as session:
            result = patterns_service.promote_drift(
                session,
                org_id=world.org_id,
                agent_id=None,
                min_drift="warning",
                limit=1000,
                dry_run=False,
                auto_resolve=True,
                now=T0,
                settings=settings,
            )
            session.commit()
            return result

    victim = uuid.UUID(promote()["pattern_ids"][0])

    def reads_open_patterns(sql: str) -> bool:
        return "FROM issue_patterns" in sql and "FOR UPDATE" not in sql

    with _closed_by_someone_else(engine, victim, after=reads_open_patterns) as fired:
        second = promote()  # planned to reuse all three; one closed before it was locked
    assert fired
    assert (
        second["eligible_item_count"],
        second["created_pattern_count"],
        second["reused_pattern_count"],
    ) == (3, 1, 2)
    assert len(second["pattern_ids"]) == 3 and str(victim) not in second["pattern_ids"]
    assert sorted(p.status for p in world.patterns()) == ["detected"] * 3 + ["wont_fix"]
