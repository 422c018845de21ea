"""Drift promotion benchmark: 10 000 eligible findings promoted to patterns, then promoted again.

Creates a private Postgres database (DATABASE_URL or postgresql://postgres@127.0.0.1:5432/postgres),
fills one org with agents x definitions whose bindings all drift (breaking), and times, per run:
the first promotion (all created), the second (all reused), a dry run, and a promotion after half
the bindings were synced (half reused, half auto-resolved). It counts the statements each issues,
prints the figures against the targets (first <= 5 s, second <= 3 s) and drops the database.

    .venv/bin/python benchmarks/promotion.py [--agents 1000] [--per-agent 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from common import timed
from sqlalchemy import Engine, delete, insert, select, update

from driftwarden.agents.models import Agent
from driftwarden.auth.models import Org
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.contracts.service import scan_drift
from driftwarden.db import scratch
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.db.helpers import chunked
from driftwarden.patterns import service as patterns_service
from driftwarden.patterns.models import IssuePattern
from driftwarden.settings import Settings

TARGETS = {"first": 5.0, "second": 3.0}


def seed(engine: Engine, *, agents: int, per_agent: int, now: datetime) -> uuid.UUID:
    """One org; every agent bound to every definition one major behind."""
    org_id = uuid.uuid4()
    agent_rows = [
        {
            "id": uuid.uuid4(),
            "org_id": org_id,
            "name": f"agent-{n:06d}",
            "status": "production",
            "metadata": {},
            "created_at": now,
            "updated_at": now,
        }
        for n in range(agents)
    ]
    definition_rows = [
        {
            "id": uuid.uuid4(),
            "org_id": org_id,
            "definition_type": "gate",
            "key": f"gate-{n:02d}",
            "name": f"Gate {n}",
            "contract_version": "2.0.0",
            "default_config": {},
            "is_active": True,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(per_agent)
    ]
    binding_rows = [
        {
            "id": uuid.uuid4(),
            "org_id": org_id,
            "agent_id": a["id"],
            "definition_id": d["id"],
            "enabled": True,
            "config": {},
            "definition_contract_version": f"1.{i % 7}.0",
            "created_at": now,
            "updated_at": now,
        }
        for i, (a, d) in enumerate((a, d) for a in agent_rows for d in definition_rows)
    ]
    with engine.begin() as conn:
        conn.execute(
            insert(Org),
            [{"id": org_id, "name": "bench", "slug": f"bench-{org_id.hex[:8]}", "created_at": now}],
        )
        conn.execute(insert(Agent.__table__), agent_rows)
        conn.execute(insert(ContractDefinition), definition_rows)
        for chunk in chunked(binding_rows, 5000):
            conn.execute(insert(ContractBinding), chunk)
    return org_id


def promote(
    engine: Engine,
    settings: Settings,
    org_id: uuid.UUID,
    now: datetime,
    *,
    limit: int,
    dry_run: bool = False,
) -> dict[str, Any]:
    with make_session_factory(engine)() as session:
        data = patterns_service.promote_drift(
            session,
            org_id=org_id,
            agent_id=None,
            min_drift="warning",
            limit=limit,
            dry_run=dry_run,
            auto_resolve=True,
            now=now,
            settings=settings,
        )
        session.rollback() if dry_run else session.commit()
        return data


def one_run(
    engine: Engine, settings: Settings, org_id: uuid.UUID, findings: int, now: datetime
) -> dict[str, Any]:
    with engine.begin() as conn:
        conn.execute(delete(IssuePattern))
        conn.execute(update(ContractBinding).values(definition_contract_version="1.0.0"))
    figures: dict[str, Any] = {}
    for name, at, dry in (
        ("first", now, False),
        ("second", now + timedelta(hours=1), False),
        ("dry_run", now + timedelta(hours=2), True),
    ):
        seconds, count, data = timed(
            engine,
            lambda at=at, dry=dry: promote(
                engine, settings, org_id, at, limit=findings, dry_run=dry
            ),
        )
        figures[name] = (seconds, count, data)
    figures["scan"] = scan_only(engine, org_id, findings)
    with engine.begin() as conn:  # sync half the fleet: their patterns must auto-resolve
        half = (
            select(ContractBinding.id)
            .order_by(ContractBinding.id)
            .limit(findings // 2)
            .scalar_subquery()
        )
        conn.execute(
            update(ContractBinding)
            .where(ContractBinding.id.in_(half))
            .values(definition_contract_version="2.0.0")
        )
    figures["half_synced"] = timed(
        engine, lambda: promote(engine, settings, org_id, now + timedelta(hours=3), limit=findings)
    )
    return figures


def scan_only(engine: Engine, org_id: uuid.UUID, findings: int) -> float:
    with make_session_factory(engine)() as session:
        started = time.perf_counter()
        scan_drift(session, org_id=org_id, min_drift="warning", enabled_only=True, limit=findings)
        return time.perf_counter() - started


def report(runs: list[dict[str, Any]], findings: int, scan_seconds: list[float]) -> None:
    print(
        f"\n{findings} eligible findings, {len(runs)} run(s); "
        "median (max) seconds, statements per promotion"
    )
    for name in ("first", "second", "dry_run", "half_synced"):
        seconds = [run[name][0] for run in runs]
        data = runs[-1][name][2]
        counts = (
            data["created_pattern_count"],
            data["reused_pattern_count"],
            data["resolved_pattern_count"],
        )
        target = TARGETS.get(name)
        verdict = (
            f"  target <= {target:.0f} s: {'OK' if max(seconds) <= target else 'MISSED'}"
            if target
            else ""
        )
        print(
            f"  {name:<12} {statistics.median(seconds):6.2f} s ({max(seconds):5.2f})  "
            f"{runs[-1][name][1]:3d} statements ({runs[-1][name][1] / findings:.4f}/finding)  "
            f"created/reused/resolved={counts}{verdict}"
        )
    scan = statistics.median(scan_seconds)
    first, second = (statistics.median(run[k][0] for run in runs) for k in ("first", "second"))
    print(
        f"  scan_drift alone: {scan:.2f} s; first/scan = {first / scan:.1f}x, "
        f"second/scan = {second / scan:.1f}x,"
        f" first/second = {first / second:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--per-agent", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = scratch.create_database("dw_bench_promotion")
    settings = Settings(DATABASE_URL=url)
    engine = make_engine(settings)
    try:
        now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
        org_id = seed(engine, agents=args.agents, per_agent=args.per_agent, now=now)
        findings = args.agents * args.per_agent
        runs = [one_run(engine, settings, org_id, findings, now) for _ in range(args.runs)]
        report(runs, findings, [run["scan"] for run in runs])
    finally:
        engine.dispose()
        scratch.drop_database(url)


if __name__ == "__main__":
    main()
