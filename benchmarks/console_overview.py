"""Console overview benchmark: /console beside GET /api/v1/contracts/drift for one large org.

On a private Postgres database (made on the server DATABASE_URL names, dropped afterwards) it
writes an org with `--agents` agents x `--per-agent` bindings (100 000 by default) with SQL,
signs a console session in, then alternates the two requests `--runs` times in one process
(the app in-process through Starlette's TestClient, so both pay the same HTTP overhead),
prints median times, their ratio (the bar is <= 1.5) and the statements each request issues,
then repeats the overview on a tenth of the agents to show its statement count does not grow.

    .venv/bin/python benchmarks/console_overview.py [--agents 10000] [--per-agent 10] [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import uuid
from datetime import UTC, datetime
from typing import Any

from common import org_with_admin_key, timed
from fastapi.testclient import TestClient
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from driftwarden.agents.models import Agent
from driftwarden.api.app import create_app
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.db import scratch
from driftwarden.db.engine import make_engine
from driftwarden.settings import Settings

VERSIONS = ("2.0.0", "1.9.0", "1.4.2", "2.0.1", "0.9.0", "not-semver")


def fill(engine: Engine, org_id: uuid.UUID, *, agents: int, per_agent: int) -> None:
    """Agents bound to `per_agent` definitions each; bound versions spread over every level."""
    now = datetime.now(UTC)
    definitions = [
        {
            "id": uuid.uuid4(),
            "org_id": org_id,
            "definition_type": "gate",
            "key": f"gate-{n}",
            "name": f"Gate {n}",
            "contract_version": "2.0.0",
            "default_config": {},
            "is_active": True,
            "created_at": now,
            "updated_at": now,
        }
        for n in range(per_agent)
    ]
    with Session(engine) as conn, conn.begin():  # ORM bulk insert: attribute names (metadata_)
        conn.execute(insert(ContractDefinition), definitions)
        for start in range(0, agents, 2000):
            rows = [
                {
                    "id": uuid.uuid4(),
                    "org_id": org_id,
                    "name": f"agent-{n:06d}",
                    "status": "production",
                    "metadata_": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(start, min(start + 2000, agents))
            ]
            conn.execute(insert(Agent), rows)
            conn.execute(
                insert(ContractBinding),
                [
                    {
                        "id": uuid.uuid4(),
                        "org_id": org_id,
                        "agent_id": a["id"],
                        "definition_id": d["id"],
                        "enabled": True,
                        "config": {},
                        "definition_contract_version": VERSIONS[(i + j) % len(VERSIONS)],
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i, a in enumerate(rows)
                    for j, d in enumerate(definitions)
                ],
            )


def measure(engine: Engine, client: TestClient, key: str, runs: int) -> dict[str, Any]:
    api_headers = {"Authorization": f"Bearer {key}"}
    api, console, statements = [], [], {}
    for _ in range(runs):
        seconds, count, response = timed(
            engine, lambda: client.get("/api/v1/contracts/drift", headers=api_headers)
        )
        assert response.status_code == 200, response.text
        api.append(seconds)
        statements["api"] = count
        seconds, count, response = timed(
            engine, lambda: client.get("/console", follow_redirects=False)
        )
        assert response.status_code == 200, response.text
        console.append(seconds)
        statements["console"] = count
    return {
        "api": statistics.median(api),
        "console": statistics.median(console),
        "statements": statements,
    }


def run(url: str, *, agents: int, per_agent: int, runs: int) -> dict[str, Any]:
    settings = Settings(DATABASE_URL=url, CONSOLE_SECRET_KEY="benchmark-" + "k" * 32)
    engine = make_engine(settings)
    try:
        org_id, key = org_with_admin_key(engine, name=f"bench-{agents}")
        fill(engine, uuid.UUID(org_id), agents=agents, per_agent=per_agent)
        with TestClient(create_app(settings, engine=engine)) as client:
            signed_in = client.post("/console/login", data={"api_key": key}, follow_redirects=False)
            assert signed_in.status_code == 303, signed_in.text
            client.get("/console")  # warm both paths once
            client.get("/api/v1/contracts/drift", headers={"Authorization": f"Bearer {key}"})
            return measure(engine, client, key, runs)
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--per-agent", type=int, default=10)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    results = {}
    for agents in (args.agents, max(args.agents // 10, 1)):
        url = scratch.create_database("dw_bench_console")
        try:
            results[agents] = run(url, agents=agents, per_agent=args.per_agent, runs=args.runs)
        finally:
            scratch.drop_database(url)
        r = results[agents]
        print(
            f"{agents} agents x {args.per_agent} bindings: "
            f"GET /api/v1/contracts/drift {r['api'] * 1000:.1f} ms, "
            f"/console {r['console'] * 1000:.1f} ms, "
            f"ratio {r['console'] / r['api']:.2f} (bar <= 1.5); "
            f"statements api={r['statements']['api']} console={r['statements']['console']}"
        )
    big, small = (results[a]["statements"]["console"] for a in results)
    print(
        f"overview statements: {big} at {args.agents} agents, "
        f"{small} at {max(args.agents // 10, 1)}: "
        f"{'fixed' if big == small else 'NOT fixed'}"
    )


if __name__ == "__main__":
    main()
