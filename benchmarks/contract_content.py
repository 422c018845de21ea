"""Contract content benchmark: the drift scan of 100 000 bindings with config schemas vs without.

Creates a private Postgres database (DATABASE_URL or postgresql://postgres@127.0.0.1:5432/postgres)
and two orgs holding the same fleet (10 000 agents x 10 definitions, the same bound versions and
configs, about 5 % of configs invalid): in one the definitions carry config schemas (over two
versions, so undeclared breaking changes are judged too), in the other none. Imports both with
the bulk import, analyzes, times GET /contracts/drift's service (default limit 200, median of
--runs) for each and a bare SQL read of the bindings (the floor), prints the figures and the ratio
with/without schemas against the target (<= 2x), and drops the database.

    .venv/bin/python benchmarks/contract_content.py [--agents 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from common import org_with_admin_key
from sqlalchemy import Engine, Uuid, bindparam, text

from driftwarden.contracts import importing
from driftwarden.contracts.schemas import ImportDocument
from driftwarden.contracts.service import scan_drift
from driftwarden.db import scratch
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.settings import Settings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
KEYS = [
    ("gate", "pii-filter"),
    ("gate", "jailbreak"),
    ("gate", "toxicity"),
    ("evaluator", "tone"),
    ("evaluator", "faithfulness"),
    ("evaluator", "latency"),
    ("evaluator", "cost"),
    ("run_type", "batch"),
    ("run_type", "chat"),
    ("run_type", "tools"),
]
TARGET_RATIO = 2.0
FLOOR_SQL = text(
    "SELECT b.definition_contract_version, d.contract_version, b.config "
    "FROM contract_bindings b JOIN contract_definitions d ON d.id = b.definition_id "
    "WHERE b.org_id = :org"
).bindparams(bindparam("org", type_=Uuid()))


def schema(strict: bool) -> dict[str, Any]:
    """A realistic config schema; the strict one (1.1.0) also requires `mode` (undeclared break)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["threshold", "mode"] if strict else ["threshold"],
        "properties": {
            "threshold": {"type": "number", "minimum": 0, "maximum": 1},
            "mode": {"enum": ["block", "flag", "log"]},
            "labels": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
            "retry": {
                "type": "object",
                "properties": {"attempts": {"type": "integer", "minimum": 0, "maximum": 5}},
            },
        },
    }


def config(rng: random.Random) -> dict[str, Any]:
    """One of a few dozen configs per definition, as fleets share templates; ~5 % are invalid."""
    if rng.random() < 0.05:
        return {"threshold": 1.5, "mode": "block"}  # over the maximum
    return {
        "threshold": rng.choice([0.1, 0.25, 0.5, 0.75, 0.9]),
        "mode": rng.choice(["block", "flag", "log"]),
        "retry": {"attempts": rng.randint(0, 3)},
    }


def document(agents: int, *, with_schemas: bool, version: str) -> dict[str, Any]:
    rng = random.Random(7)
    definitions = [
        {
            "definition_type": t,
            "key": k,
            "name": k,
            "contract_version": version,
            "default_config": {"labels": []},
            **({"config_schema": schema(version == "1.1.0")} if with_schemas else {}),
        }
        for t, k in KEYS
    ]
    fleet = [
        {
            "external_id": f"ext-{n:06d}",
            "name": f"agent-{n:06d}",
            "bindings": [
                {
                    "definition_type": t,
                    "key": k,
                    "config": config(rng),
                    "definition_contract_version": rng.choice(["1.0.0", "1.0.0", "1.1.0"]),
                }
                for t, k in KEYS
            ],
        }
        for n in range(agents)
    ]
    return {"definitions": definitions, "agents": fleet}


def seed(engine: Engine, org_id: str, agents: int, *, with_schemas: bool) -> None:
    """Two imports: versions 1.0.0 then 1.1.0 of every definition, the fleet with the second."""
    factory = make_session_factory(engine)
    for version, count in (("1.0.0", 0), ("1.1.0", agents)):
        body = document(count, with_schemas=with_schemas, version=version)
        doc = ImportDocument.model_validate(body)
        with factory() as session:
            importing.import_document(session, org_id=uuid.UUID(org_id), doc=doc, now=NOW)
            session.commit()


def analyze(engine: Engine) -> None:
    """Statistics, as autovacuum keeps them on a running server: without them the timing depends
    on whether autovacuum happened to analyze the fresh rows (the planner's row estimates)."""
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def median_seconds(work: Any, runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def measure(engine: Engine, org_id: str, runs: int) -> dict[str, Any]:
    factory = make_session_factory(engine)
    org = uuid.UUID(org_id)

    def scan() -> Any:
        with factory() as session:
            return scan_drift(session, org_id=org)

    def floor() -> int:
        with engine.connect() as conn:
            return len(conn.execute(FLOOR_SQL, {"org": org}).all())

    scan()  # warm caches (validators, classification) as a running server has them
    seconds, result = median_seconds(scan, runs)
    return {"scan": seconds, "floor": median_seconds(floor, runs)[0], "result": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    url = scratch.create_database("dw_bench_content")
    engine = make_engine(Settings(DATABASE_URL=url))
    try:
        figures = {}
        for label, with_schemas in (("without schemas", False), ("with schemas", True)):
            org_id, _ = org_with_admin_key(engine, name=label.replace(" ", "-"))
            seed(engine, org_id, args.agents, with_schemas=with_schemas)
            analyze(engine)
            figures[label] = measure(engine, org_id, args.runs)
        report(figures, args.agents * len(KEYS))
    finally:
        engine.dispose()
        scratch.drop_database(url)


def report(figures: dict[str, dict[str, Any]], bindings: int) -> None:
    for label, f in figures.items():
        scan = f["result"]
        print(
            f"{label:>16}: scan {f['scan'] * 1000:8.1f} ms  floor (bare read) "
            f"{f['floor'] * 1000:8.1f} ms  bindings {scan.checked_binding_count}  "
            f"counts {scan.counts}  severity {scan.severity_counts}"
        )
    ratio = figures["with schemas"]["scan"] / figures["without schemas"]["scan"]
    verdict = "OK" if ratio <= TARGET_RATIO else "OVER TARGET"
    print(
        f"{bindings} bindings: with/without schemas = {ratio:.2f}x (target <= {TARGET_RATIO}x) "
        f"{verdict}"
    )
    if ratio > TARGET_RATIO:
        sys.exit(1)


if __name__ == "__main__":
    main()
