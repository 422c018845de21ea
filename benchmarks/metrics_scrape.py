"""Metrics scrape benchmark: an uncached GET /metrics state read over 100 000 bindings in 500 orgs.

On Postgres (DATABASE_URL or postgresql://postgres@127.0.0.1:5432/postgres) it builds two private
databases with the same 100 000 bindings (same versions, same random seed): one spread over 500
orgs (200 each), one in a single org. Side by side in one run it times, as medians:

- the uncached scrape (`exposition.render(state.read_snapshot(...))`, no METRICS_CACHE_SECONDS)
  over the 500 orgs, as a running server does it: the drift levels of the version pairs met by
  its earlier scrapes are remembered (a pure classification); and the first scrape of a process,
  which classifies every pair;
- one drift scan (`scan_drift`, the API's default page) of the single org's 100 000 bindings;
- the drift scans of all 500 orgs, one after another (what answering per org through the API takes);

and prints the statements each issues, and the scrape's statements at 50 orgs and at 500 (they
must be equal). Target: scrape <= 1.5x one scan of the same 100 000 bindings.

Beside them, two parts no reading of the bindings at scrape time can avoid, each timed alone: the
database's grouping of the 100 000 bindings by (org, definition, bound version), the grain the
drift level is decided at (the count of the groups is all it returns), and prometheus-client's
rendering of the snapshot. Their sum against one scan says how close this design can come.

    .venv/bin/python benchmarks/metrics_scrape.py [--orgs 500] [--bindings 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from common import timed
from drift_scan import DEFINITIONS, bound_version
from sqlalchemy import Engine, insert, text

from driftwarden.agents.models import Agent
from driftwarden.auth.models import Org
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.contracts.service import scan_drift
from driftwarden.db import scratch
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.metrics import exposition, state
from driftwarden.settings import Settings

SERVER = os.environ.get("DATABASE_URL", scratch.DEFAULT_SERVER_URL)
PER_AGENT = len(DEFINITIONS)


def populate(engine: Engine, *, orgs: int, bindings: int, first_org: int = 0) -> list[uuid.UUID]:
    """`orgs` orgs sharing `bindings` bindings evenly, ten definitions each; returns their ids."""
    now, rng = datetime.now(UTC), random.Random(42 + first_org)
    agents_per_org = max(1, bindings // orgs // PER_AGENT)
    rows: dict[Any, list[dict[str, Any]]] = {
        Org: [],
        ContractDefinition: [],
        Agent: [],
        ContractBinding: [],
    }
    org_ids = []
    for n in range(first_org, first_org + orgs):
        org_id = uuid.uuid4()
        org_ids.append(org_id)
        rows[Org].append(
            {
                "id": org_id,
                "name": f"org {n}",
                "slug": f"org-{n}-{org_id.hex[:6]}",
                "created_at": now,
            }
        )
        definitions = [(uuid.uuid4(), t, k, v) for t, k, v in DEFINITIONS]
        rows[ContractDefinition] += [
            {
                "id": d,
                "org_id": org_id,
                "definition_type": t,
                "key": k,
                "name": k,
                "contract_version": v,
                "default_config": {},
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            }
            for d, t, k, v in definitions
        ]
        for _ in range(agents_per_org):
            agent_id = uuid.uuid4()
            rows[Agent].append(
                {
                    "id": agent_id,
                    "org_id": org_id,
                    "name": f"agent-{rng.randint(0, 10**6):07d}",
                    "status": "production",
                    "metadata_": {},
                    "created_at": now,
                    "updated_at": now,
                }
            )
            rows[ContractBinding] += [
                {
                    "org_id": org_id,
                    "agent_id": agent_id,
                    "definition_id": d,
                    "enabled": True,
                    "config": {},
                    "definition_contract_version": bound_version(rng, v),
                    "created_at": now,
                    "updated_at": now,
                }
                for d, _, _, v in definitions
            ]
    with make_session_factory(engine)() as session:
        for model, values in rows.items():
            for start in range(0, len(values), 5000):
                session.execute(insert(model), values[start : start + 5000])
        session.commit()
    return org_ids


def median_of(engine: Engine, runs: int, work: Callable[[], Any]) -> tuple[float, int]:
    """Median seconds over `runs` and the statements of one run."""
    results = [timed(engine, work) for _ in range(runs)]
    return statistics.median(r[0] for r in results), results[0][1]


def scrape(engine: Engine, levels: state.PairLevels | None = None) -> Callable[[], Any]:
    """One scrape with no snapshot cache; `levels` kept between calls as a server keeps them, or
    None for a process that has never scraped (every version pair classified afresh)."""
    factory = make_session_factory(engine)

    def work() -> bytes:
        with factory() as session:
            snapshot = state.read_snapshot(session, now=datetime.now(UTC), levels=levels)
        return exposition.render(snapshot, org_labels=True)[0]

    return work


GROUPS_ALONE = text(
    "SELECT count(*) FROM (SELECT org_id, definition_id, definition_contract_version, count(*) "
    "FROM contract_bindings GROUP BY org_id, definition_id, definition_contract_version) AS g"
)


def grouping_alone(engine: Engine) -> Callable[[], Any]:
    """The per-(org, definition, bound version) grouping the scrape's count starts with."""

    def work() -> int:
        with engine.connect() as conn:
            return int(conn.execute(GROUPS_ALONE).scalar_one())

    return work


def rendering_alone(engine: Engine) -> Callable[[], Any]:
    """prometheus-client rendering one snapshot read beforehand, untimed."""
    with make_session_factory(engine)() as session:
        snapshot = state.read_snapshot(session, now=datetime.now(UTC))
    return lambda: exposition.render(snapshot, org_labels=True)[0]


def scans(engine: Engine, org_ids: list[uuid.UUID]) -> Callable[[], Any]:
    factory = make_session_factory(engine)

    def work() -> int:
        with factory() as session:
            return sum(
                scan_drift(session, org_id=org_id).checked_binding_count for org_id in org_ids
            )

    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=500)
    parser.add_argument("--bindings", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    spread_url = scratch.create_database("dw_bench_metrics", server=SERVER)
    single_url = scratch.create_database("dw_bench_metrics_one", server=SERVER)
    spread, single = (make_engine(Settings(DATABASE_URL=u)) for u in (spread_url, single_url))
    try:
        few = args.orgs // 10
        org_ids = populate(spread, orgs=few, bindings=args.bindings * few // args.orgs)
        _, statements_few, _ = timed(spread, scrape(spread))
        org_ids += populate(
            spread,
            orgs=args.orgs - few,
            bindings=args.bindings - args.bindings * few // args.orgs,
            first_org=few,
        )
        [big_org] = populate(single, orgs=1, bindings=args.bindings)
        for engine in (spread, single):  # as autovacuum would after a bulk load
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM (ANALYZE)")
        first_s, _ = median_of(spread, args.runs, scrape(spread))
        scrape_s, scrape_statements = median_of(
            spread, args.runs, scrape(spread, state.PairLevels())
        )
        one_scan_s, one_scan_statements = median_of(single, args.runs, scans(single, [big_org]))
        grouping_s, _ = median_of(spread, args.runs, grouping_alone(spread))
        rendering_s, _ = median_of(spread, args.runs, rendering_alone(spread))
        all_scans_s, all_scans_statements = median_of(
            spread, max(1, args.runs // 2), scans(spread, org_ids)
        )
    finally:
        spread.dispose()
        single.dispose()
        scratch.drop_database(spread_url, server=SERVER)
        scratch.drop_database(single_url, server=SERVER)
    report(
        args,
        first_s,
        scrape_s,
        one_scan_s,
        all_scans_s,
        (statements_few, scrape_statements, one_scan_statements, all_scans_statements),
        few,
        (grouping_s, rendering_s),
    )


def report(
    args: argparse.Namespace,
    first_s: float,
    scrape_s: float,
    one_scan_s: float,
    all_scans_s: float,
    statements: tuple[int, int, int, int],
    few: int,
    parts: tuple[float, float],
) -> None:
    few_count, scrape_count, one_count, all_count = statements
    ratio = scrape_s / one_scan_s
    print(
        f"bindings: {args.bindings} in {args.orgs} orgs (scrape, per-org scans), "
        "in 1 org (one scan)"
    )
    print(
        f"uncached scrape:            median {scrape_s * 1000:8.1f} ms, {scrape_count} statements"
        " (version pairs classified by an earlier scrape, as in a running server)"
    )
    print(
        f"first scrape of a process:  median {first_s * 1000:8.1f} ms "
        f"(every pair classified), {first_s / one_scan_s:.2f}x one scan"
    )
    print(f"one scan of 1 org:          median {one_scan_s * 1000:8.1f} ms, {one_count} statements")
    print(
        f"scans of all {args.orgs} orgs:     median {all_scans_s * 1000:8.1f} ms, "
        f"{all_count} statements"
    )
    print(f"scrape statements: {few_count} at {few} orgs, {scrape_count} at {args.orgs} orgs")
    print(
        f"ratio: scrape / one scan = {ratio:.2f}x (target <= 1.5x); scrape / per-org scans = "
        f"{scrape_s / all_scans_s:.3f}x"
    )
    grouping_s, rendering_s = parts
    print(
        f"parts alone: grouping the bindings {grouping_s * 1000:.1f} ms + rendering "
        f"{rendering_s * 1000:.1f} ms = {(grouping_s + rendering_s) / one_scan_s:.2f}x one scan"
    )
    checks = {
        "scrape <= 1.5x one scan": ratio <= 1.5,
        "statements do not grow": few_count == scrape_count,
    }
    print(
        "targets: "
        + ", ".join(f"{name}: {'ok' if ok else 'MISSED'}" for name, ok in checks.items())
    )
    if not all(checks.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
