"""Latency of `POST /system/contracts/drift/schedule-run`: the executed run and the deduped re-runs.

Run: .venv/bin/python benchmarks/schedule_run.py [--calls 200] [--agents 200] [--bindings 5]
Uses the Postgres at DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
creating and dropping a database of its own, and one uvicorn process on 127.0.0.1.
Target: median deduped call <= 25 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime

import httpx

from driftwarden.agents.models import Agent
from driftwarden.auth import service as auth_service
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.db import scratch
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.settings import Settings

TARGET_MS = 25.0
PATH = "/api/v1/system/contracts/drift/schedule-run"


def seed(url: str, *, agents: int, bindings: int) -> tuple[str, str]:
    """An org, an admin key, and `agents` agents.

    Each agent is bound to `bindings` definitions, half of them drifted.
    """
    now = datetime.now(UTC)
    engine = make_engine(Settings(DATABASE_URL=url), null_pool=True)
    with make_session_factory(engine)() as session:
        org = auth_service.create_org(session, name="bench", slug=None, now=now)
        _, key = auth_service.create_api_key(
            session,
            name="bench",
            org_id=org.id,
            role="admin",
            expires_at=None,
            created_by=None,
            now=now,
        )
        definitions = [
            ContractDefinition(
                org_id=org.id,
                definition_type="gate",
                key=f"gate-{n}",
                name=f"Gate {n}",
                contract_version="2.0.0",
                default_config={},
                is_active=True,
                created_at=now,
                updated_at=now,
            )
            for n in range(bindings)
        ]
        session.add_all(definitions)
        session.flush()
        for a in range(agents):
            agent = Agent(
                org_id=org.id,
                name=f"agent-{a:04d}",
                status="production",
                metadata_={},
                created_at=now,
                updated_at=now,
            )
            session.add(agent)
            session.flush()
            session.add_all(
                [
                    ContractBinding(
                        org_id=org.id,
                        agent_id=agent.id,
                        definition_id=d.id,
                        enabled=True,
                        config={},
                        definition_contract_version="1.0.0" if i % 2 else "2.0.0",
                        created_at=now,
                        updated_at=now,
                    )
                    for i, d in enumerate(definitions)
                ]
            )
        session.commit()
    engine.dispose()
    return str(org.id), key


def serve(url: str, port: int) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "driftwarden.api.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("uvicorn did not become ready")


def timed(http: httpx.Client, body: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    response = http.post(PATH, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
    elapsed = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise SystemExit(f"schedule-run failed: HTTP {response.status_code} {response.text[:300]}")
    return elapsed, response.json()["data"]


def measure(http: httpx.Client, body: dict, calls: int) -> list[float]:
    """`calls` deduped schedule runs in the executed window.

    Sequentially (latency, not throughput).
    """
    latencies = []
    for _ in range(calls):
        elapsed, data = timed(http, body)
        assert data["trigger"]["deduped"] is True, data["trigger"]
        latencies.append(elapsed)
    return latencies


def report(label: str, latencies: list[float]) -> float:
    ordered = sorted(latencies)
    median = statistics.median(ordered)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    print(
        f"{label:<40} n={len(ordered):4d}  median {median:7.2f} ms  p95 {p95:7.2f} ms  "
        f"max {ordered[-1]:7.2f} ms  median/target {median / TARGET_MS:5.2f}"
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--bindings", type=int, default=5)
    args = parser.parse_args()
    url = scratch.create_database("dw_bench_schedule")
    process = None
    try:
        org_id, key = seed(url, agents=args.agents, bindings=args.bindings)
        port = int(os.environ.get("BENCH_PORT", "0")) or _free_port()
        process = serve(url, port)
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=60,
        ) as http:
            http.post(
                "/api/v1/system/contracts/drift-policy",
                json={"enabled": True, "min_drift": "warning"},
            )
            body = {"org_id": org_id}
            executed_ms, first = timed(http, body)
            promote = first["trigger"]["promote"]
            print(
                f"bindings {args.agents * args.bindings}, drifted findings promoted: "
                f"{promote['created_pattern_count']} patterns"
            )
            print(f"{'executed schedule-run (first of window)':<40} {executed_ms:7.2f} ms")
            for _ in range(10):  # warm the connection pools
                timed(http, body)
            skipped = report(
                "deduped, alerts off (notify skipped)", measure(http, body, args.calls)
            )
            http.post("/api/v1/system/contracts/drift-policy", json={"alert_enabled": True})
            # No destination configured: every call is an anomaly whose send fails and bumps
            # the escalation.
            failed = report(
                "deduped, alerting, delivery failing", measure(http, body, args.calls // 4)
            )
            print(
                f"ratio executed/deduped-median {executed_ms / skipped:6.1f}x; "
                f"target {TARGET_MS} ms: "
                f"{'met' if skipped <= TARGET_MS else 'NOT met'} (alerts off), "
                f"{'met' if failed <= TARGET_MS else 'NOT met'} (failing-alert path)"
            )
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=20)
        scratch.drop_database(url)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
