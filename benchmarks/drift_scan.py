"""Drift scan benchmark: 10 000 agents x 10 bindings imported through the API, then the scan timed.

For each backend (Postgres at DATABASE_URL or postgresql://postgres@127.0.0.1:5432/postgres, and
a SQLite file) it creates a private database, imports the fleet with POST /api/v1/contracts/import
(in chunks, through a real uvicorn server), restarts the server, times GET /api/v1/contracts/drift
(default limit) and a bare SQL read of the same (bound, current) version pairs (the floor), samples
the server's RSS during the scans, counts the statements one scan issues, and prints the ratios.

    .venv/bin/python benchmarks/drift_scan.py [--agents 10000] [--per-agent 10] [--runs 7]
        [--backend both]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from common import org_with_admin_key
from sqlalchemy import Uuid, bindparam, event, text

from driftwarden.contracts.service import scan_drift
from driftwarden.db import migrate, scratch
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.db.helpers import chunked
from driftwarden.settings import Settings

ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DEFINITIONS = [
    ("gate", "pii-filter", "2.3.1"),
    ("gate", "jailbreak", "1.4.0"),
    ("gate", "toxicity", "0.5.2"),
    ("evaluator", "tone", "3.0.0"),
    ("evaluator", "faithfulness", "1.12.4"),
    ("evaluator", "latency", "0.0.7"),
    ("evaluator", "cost", "5.1.0-rc.2"),
    ("run_type", "batch", "1.0.0"),
    ("run_type", "chat", "2.0.0+build.77"),
    ("run_type", "tools", "4.2.0"),
]
INVALID = ["v1.2.3", "1.2", "latest", "", "01.0.0", "1.0.0.0"]
FLOOR_SQL = text(
    "SELECT b.definition_contract_version, d.contract_version FROM contract_bindings b "
    "JOIN contract_definitions d ON d.id = b.definition_id WHERE b.org_id = :org"
).bindparams(bindparam("org", type_=Uuid()))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bound_version(rng: random.Random, current: str) -> str | None:
    """A realistic spread of bound versions.

    Most current, some behind by a patch/minor, fewer by a major, a few junk.
    """
    core = current.split("+")[0].split("-")[0]
    major, minor, patch = (int(p) for p in core.split("."))
    roll = rng.random()
    if roll < 0.55:
        return current
    if roll < 0.75:
        return f"{major}.{minor}.{max(patch - rng.randint(1, 3), 0)}"
    if roll < 0.85:
        return f"{major}.{max(minor - rng.randint(1, 4), 0)}.{rng.randint(0, 9)}"
    if roll < 0.93:
        return f"{max(major - 1, 0)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}"
    if roll < 0.97:
        return f"{core}-rc.{rng.randint(1, 3)}"
    return None if roll < 0.975 else rng.choice(INVALID)


def fleet_chunks(agents: int, per_agent: int, chunk: int) -> list[dict[str, Any]]:
    rng = random.Random(42)
    defs = DEFINITIONS[:per_agent]
    docs = []
    for numbers in chunked(range(agents), chunk):
        docs.append(
            {
                "agents": [
                    {
                        "external_id": f"ext-{n:06d}",
                        "name": f"agent-{rng.randint(0, 10**6):07d}",
                        "status": "production",
                        "bindings": [
                            {
                                "definition_type": t,
                                "key": k,
                                "definition_contract_version": bound_version(rng, v),
                                "enabled": rng.random() > 0.05,
                            }
                            for t, k, v in defs
                        ],
                    }
                    for n in numbers
                ]
            }
        )
    docs[0]["definitions"] = [
        {"definition_type": t, "key": k, "name": k, "contract_version": v} for t, k, v in defs
    ]
    return docs


class Target:
    """A private database (Postgres or SQLite), migrated, with an org and an admin key."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.url = ""

    def create(self) -> tuple[str, str]:
        if self.backend == "postgres":
            self.url = scratch.create_database("dw_bench_scan", server=ADMIN_URL)
        else:
            self.url = f"sqlite:///{tempfile.mkdtemp(prefix='dw-bench-')}/bench.db"
        engine = make_engine(Settings(DATABASE_URL=self.url), null_pool=True)
        migrate.upgrade(engine)
        try:
            return org_with_admin_key(engine, name="bench")
        finally:
            engine.dispose()

    def drop(self) -> None:
        if self.backend == "postgres" and self.url:
            scratch.drop_database(self.url, server=ADMIN_URL)


class Server:
    """One uvicorn process (so its pid is the one serving) with RSS sampling."""

    def __init__(self, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "driftwarden.api.asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
        )
        self.peak_rss_kb = 0
        self._sampling = False

    def __enter__(self) -> Server:
        for _ in range(300):
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc: object) -> None:
        self._sampling = False
        self.process.terminate()
        self.process.wait(timeout=30)

    def rss_kb(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        return 0

    def sample(self) -> None:
        self._sampling = True

        def loop() -> None:
            while self._sampling:
                self.peak_rss_kb = max(self.peak_rss_kb, self.rss_kb())
                time.sleep(0.005)

        threading.Thread(target=loop, daemon=True).start()


def timed_import(
    server: Server, headers: dict[str, str], docs: list[dict[str, Any]]
) -> tuple[float, dict]:
    totals = {"agents": 0, "bindings": 0}
    started = time.perf_counter()
    with httpx.Client(base_url=server.url, headers=headers, timeout=600) as client:
        for doc in docs:
            response = client.post("/api/v1/contracts/import", json=doc)
            response.raise_for_status()
            result = response.json()["data"]
            totals["agents"] += result["agents"]["created"]
            totals["bindings"] += result["bindings"]["created"]
    return time.perf_counter() - started, totals


def timed_scans(server: Server, headers: dict[str, str], runs: int) -> tuple[list[float], dict]:
    times, body = [], {}
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
        client.get("/api/v1/contracts/drift").raise_for_status()  # warm-up
        server.sample()
        for _ in range(runs):
            started = time.perf_counter()
            response = client.get("/api/v1/contracts/drift")
            times.append(time.perf_counter() - started)
            response.raise_for_status()
            body = response.json()["data"]
    return times, body


def _timed(runs: int, read: Any) -> tuple[list[float], int]:
    read()  # warm-up
    times, rows = [], 0
    for _ in range(runs):
        started = time.perf_counter()
        rows = len(read())
        times.append(time.perf_counter() - started)
    return times, rows


def floors(engine: Any, org_id: str, runs: int) -> dict[str, Any]:
    """Bare reads of every (bound, current) pair.

    Through SQLAlchemy Core, and on the raw DB-API cursor.
    """
    org = uuid.UUID(org_id)
    with engine.connect() as conn:
        core, rows = _timed(runs, lambda: conn.execute(FLOOR_SQL, {"org": org}).fetchall())
    raw_conn = engine.raw_connection()
    try:
        cursor = raw_conn.cursor()
        pg = engine.dialect.name == "postgresql"
        sql = str(FLOOR_SQL).replace(":org", "%s" if pg else "?")
        param = org if pg else org.hex  # SQLite stores Uuid as 32 hex characters
        raw, _ = _timed(runs, lambda: cursor.execute(sql, (param,)).fetchall())
    finally:
        raw_conn.close()
    return {
        "floor_median_s": statistics.median(core),
        "raw_floor_median_s": statistics.median(raw),
        "floor_rows": rows,
    }


def floor_and_queries(url: str, org_id: str, runs: int) -> dict[str, Any]:
    """The floors, and the statements one in-process scan issues."""
    engine = make_engine(Settings(DATABASE_URL=url))
    result = floors(engine, org_id, runs)
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with make_session_factory(engine)() as session:
        scan_drift(session, org_id=uuid.UUID(org_id))
    engine.dispose()
    return {**result, "statements": len(statements)}


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    target = Target(backend)
    org_id, key = target.create()
    headers = {"Authorization": f"Bearer {key}"}
    docs = fleet_chunks(args.agents, args.per_agent, args.chunk)
    try:
        with Server(target.url) as server:
            import_s, totals = timed_import(server, headers, docs)
        with Server(target.url) as server:
            scans, body = timed_scans(server, headers, args.runs)
            peak_mb = max(server.peak_rss_kb, server.rss_kb("VmHWM")) / 1024
        measured = floor_and_queries(target.url, org_id, args.runs)
    finally:
        target.drop()
    return {
        "backend": backend,
        "import_s": import_s,
        **totals,
        "scan_median_s": statistics.median(scans),
        "scan_min_s": min(scans),
        "peak_rss_mb": peak_mb,
        "counts": body["counts"],
        "items": len(body["items"]),
        "checked": body["checked_binding_count"],
        **measured,
    }


def report(r: dict[str, Any]) -> None:
    ratio = r["scan_median_s"] / r["floor_median_s"]
    raw_ratio = r["scan_median_s"] / r["raw_floor_median_s"]
    print(f"\n== {r['backend']}")
    print(
        f"import: {r['agents']} agents, {r['bindings']} bindings in {r['import_s']:.2f} s "
        f"({r['bindings'] / r['import_s']:.0f} bindings/s)"
    )
    print(
        f"scan:   median {r['scan_median_s'] * 1000:.0f} ms "
        f"(min {r['scan_min_s'] * 1000:.0f} ms) over "
        f"{r['checked']} bindings, {r['items']} items returned, counts {r['counts']}"
    )
    print(
        f"floor:  bare read of {r['floor_rows']} (bound, current) pairs, "
        f"median {r['floor_median_s'] * 1000:.0f} ms "
        f"(SQLAlchemy Core), {r['raw_floor_median_s'] * 1000:.0f} ms (raw DB-API cursor)"
    )
    print(f"ratio:  scan / floor = {ratio:.2f}x (Core), {raw_ratio:.2f}x (raw cursor)")
    print(
        f"server peak RSS during the scans: {r['peak_rss_mb']:.0f} MB; "
        f"statements per scan: {r['statements']}"
    )
    if r["backend"] == "postgres":
        checks = {
            "scan median <= 0.5 s": r["scan_median_s"] <= 0.5,
            "scan <= 3x floor": raw_ratio <= 3,
            "import <= 15 s": r["import_s"] <= 15,
            "peak RSS <= 300 MB": r["peak_rss_mb"] <= 300,
        }
        print(
            "targets: "
            + ", ".join(
                f"{name}: {'ok' if passed else 'MISSED'}" for name, passed in checks.items()
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--per-agent", type=int, default=10, choices=range(1, len(DEFINITIONS) + 1))
    parser.add_argument("--chunk", type=int, default=1000, help="agents per import request")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--backend", choices=("postgres", "sqlite", "both"), default="both")
    args = parser.parse_args()
    for backend in ("postgres", "sqlite") if args.backend == "both" else (args.backend,):
        report(run(backend, args))


if __name__ == "__main__":
    main()
