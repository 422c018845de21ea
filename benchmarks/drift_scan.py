"""Drift scan benchmark: 10 000 agents x 10 bindings imported through the API, then the scan timed.

For each backend (Postgres at DATABASE_URL or postgresql://postgres@127.0.0.1:5432/postgres, and
a SQLite file) it creates a private database, imports the fleet with POST /api/v1/contracts/import
(in chunks, through a real uvicorn server), VACUUMs and ANALYZEs as autovacuum would (Postgres),
restarts the server and times, side by side in rounds so load on the machine hits them alike:
GET /api/v1/contracts/drift (default page) through the server, scan_drift() in process (the
function behind it), and the floor, a bare read of every (bound, current) version pair of the org
through SQLAlchemy Core and on the raw DB-API cursor. It samples the server's RSS during the
scans, counts the statements one in-process scan issues, and prints the ratios to the raw floor.

    .venv/bin/python benchmarks/drift_scan.py [--agents 10000] [--per-agent 10] [--runs 7]
        [--backend both] [--sizes 1000,10000,100000]

`--sizes` runs each agent count in turn (x per-agent bindings) and ends with the scale-curve
table. Bars (Postgres): the HTTP scan below 1.0x the raw floor at 100 000 bindings; the scan at
most 1.0x the raw floor at 10 000, 100 000 and 1 000 000 bindings (at 10 000 the HTTP request's
fixed cost is most of the scan, so the table gives the in-process ratio beside the HTTP one);
server peak RSS at most 400 MB at 1 000 000 bindings.
"""

from __future__ import annotations

import argparse
import os
import random
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
from common import free_port, org_with_admin_key
from sqlalchemy import Uuid, bindparam, event, text
from sqlalchemy.orm import Session

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


def settle(url: str) -> None:
    """VACUUM (ANALYZE) after the bulk import, as autovacuum would in production.

    Autovacuum's insert threshold would vacuum and analyze these tables within a minute; doing it
    here means the plans (index-only scans need the visibility map) do not depend on its timing.
    SQLite has no autovacuum or statistics by default, so it is left as the import leaves it.
    """
    engine = make_engine(Settings(DATABASE_URL=url), null_pool=True)
    try:
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in ("agents", "contract_definitions", "contract_bindings"):
                    conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    finally:
        engine.dispose()


class Readers:
    """The four things timed side by side: the HTTP scan, the in-process scan, two floors."""

    def __init__(self, url: str, org_id: str, client: httpx.Client) -> None:
        self.org = uuid.UUID(org_id)
        self.client = client
        self.engine = make_engine(Settings(DATABASE_URL=url))
        self.conn = self.engine.connect()
        # On its own connection, so the in-process figure is scan_drift() and not the pool's ping.
        self.session = Session(bind=self.engine.connect())
        self.raw = self.engine.raw_connection()
        self.cursor = self.raw.cursor()
        pg = self.engine.dialect.name == "postgresql"
        self.raw_sql = str(FLOOR_SQL).replace(":org", "%s" if pg else "?")
        self.raw_param = self.org if pg else self.org.hex  # SQLite stores Uuid as 32 hex chars
        self.body: dict[str, Any] = {}

    def http_scan(self) -> int:
        response = self.client.get("/api/v1/contracts/drift")
        response.raise_for_status()
        self.body = response.json()["data"]
        return len(self.body["items"])

    def in_process_scan(self) -> int:
        scan = scan_drift(self.session, org_id=self.org)
        self.session.rollback()  # end the snapshot, as a request would
        return len(scan.items)

    def core_floor(self) -> int:
        rows = len(self.conn.execute(FLOOR_SQL, {"org": self.org}).fetchall())
        self.conn.rollback()  # SQLite's BEGIN IMMEDIATE would hold the server's requests back
        return rows

    def raw_floor(self) -> int:
        rows = len(self.cursor.execute(self.raw_sql, (self.raw_param,)).fetchall())
        self.raw.rollback()
        return rows

    def close(self) -> None:
        self.session.close()
        self.session.bind.close()
        self.conn.close()
        self.raw.close()
        self.engine.dispose()


def timed_side_by_side(readers: Readers, runs: int) -> dict[str, Any]:
    """Each reader once per round, rounds repeated: load on the machine hits all four alike."""
    work = {
        "http_scan": readers.http_scan,
        "scan": readers.in_process_scan,
        "floor": readers.core_floor,
        "raw_floor": readers.raw_floor,
    }
    times: dict[str, list[float]] = {name: [] for name in work}
    rows = {name: read() for name, read in work.items()}  # warm-up
    for _ in range(runs):
        for name, read in work.items():
            started = time.perf_counter()
            read()
            times[name].append(time.perf_counter() - started)
    return {"times": times, "rows": rows}


def statements_per_scan(url: str, org_id: str) -> int:
    """The statements one in-process scan issues (the HTTP scan adds its auth and ping)."""
    engine = make_engine(Settings(DATABASE_URL=url))
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    with make_session_factory(engine)() as session:
        scan_drift(session, org_id=uuid.UUID(org_id))
    engine.dispose()
    return len(statements)


def measure(url: str, org_id: str, headers: dict[str, str], runs: int) -> dict[str, Any]:
    with (
        Server(url) as server,
        httpx.Client(base_url=server.url, headers=headers, timeout=600) as client,
    ):
        readers = Readers(url, org_id, client)
        try:
            server.sample()
            timed = timed_side_by_side(readers, runs)
            peak_mb = max(server.peak_rss_kb, server.rss_kb("VmHWM")) / 1024
            body = readers.body
        finally:
            readers.close()
    medians = {f"{name}_median_s": statistics.median(t) for name, t in timed["times"].items()}
    return {
        **medians,
        "http_scan_min_s": min(timed["times"]["http_scan"]),
        "floor_rows": timed["rows"]["raw_floor"],
        "peak_rss_mb": peak_mb,
        "counts": body["counts"],
        "items": len(body["items"]),
        "checked": body["checked_binding_count"],
        "statements": statements_per_scan(url, org_id),
    }


def run(backend: str, agents: int, args: argparse.Namespace) -> dict[str, Any]:
    target = Target(backend)
    org_id, key = target.create()
    headers = {"Authorization": f"Bearer {key}"}
    docs = fleet_chunks(agents, args.per_agent, args.chunk)
    try:
        with Server(target.url) as server:
            import_s, totals = timed_import(server, headers, docs)
        settle(target.url)
        measured = measure(target.url, org_id, headers, args.runs)
    finally:
        target.drop()
    return {"backend": backend, "import_s": import_s, **totals, **measured}


def report(r: dict[str, Any]) -> None:
    http_raw = r["http_scan_median_s"] / r["raw_floor_median_s"]
    scan_raw = r["scan_median_s"] / r["raw_floor_median_s"]
    ms = {k: v * 1000 for k, v in r.items() if k.endswith("_s") and k != "import_s"}
    print(f"\n== {r['backend']}, {r['bindings']} bindings")
    print(
        f"import: {r['agents']} agents, {r['bindings']} bindings in {r['import_s']:.2f} s "
        f"({r['bindings'] / r['import_s']:.0f} bindings/s)"
    )
    print(
        f"scan:   GET /api/v1/contracts/drift median {ms['http_scan_median_s']:.1f} ms "
        f"(min {ms['http_scan_min_s']:.1f} ms); scan_drift() in process "
        f"{ms['scan_median_s']:.1f} ms; over {r['checked']} bindings, {r['items']} items "
        f"returned, counts {r['counts']}"
    )
    print(
        f"floor:  bare read of {r['floor_rows']} (bound, current) pairs, "
        f"median {ms['floor_median_s']:.1f} ms "
        f"(SQLAlchemy Core), {ms['raw_floor_median_s']:.1f} ms (raw DB-API cursor)"
    )
    print(
        f"ratio:  HTTP scan / raw floor = {http_raw:.2f}x, in-process scan / raw floor = "
        f"{scan_raw:.2f}x, HTTP scan / Core floor = "
        f"{r['http_scan_median_s'] / r['floor_median_s']:.2f}x"
    )
    print(
        f"server peak RSS during the scans: {r['peak_rss_mb']:.0f} MB; "
        f"statements per scan: {r['statements']}"
    )
    if r["backend"] == "postgres":
        checks = {"HTTP scan < 1.0x raw floor": http_raw < 1.0}
        checks["in-process scan <= 1.0x raw floor"] = scan_raw <= 1.0
        checks["peak RSS <= 400 MB"] = r["peak_rss_mb"] <= 400
        print(
            "targets: "
            + ", ".join(
                f"{name}: {'ok' if passed else 'MISSED'}" for name, passed in checks.items()
            )
        )


def curve(rows: list[dict[str, Any]]) -> None:
    """The scale-curve table: one line per size, every ratio against the raw floor."""
    print("\nbindings   HTTP scan  in-process  raw floor  HTTP/floor  in-proc/floor  peak RSS")
    for r in rows:
        floor = r["raw_floor_median_s"]
        print(
            f"{r['bindings']:>9}  {r['http_scan_median_s'] * 1000:7.1f} ms "
            f"{r['scan_median_s'] * 1000:7.1f} ms {floor * 1000:7.1f} ms "
            f"{r['http_scan_median_s'] / floor:9.2f}x {r['scan_median_s'] / floor:12.2f}x "
            f"{r['peak_rss_mb']:6.0f} MB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument(
        "--sizes", help="agent counts to run in turn and tabulate, e.g. 1000,10000,100000"
    )
    parser.add_argument("--per-agent", type=int, default=10, choices=range(1, len(DEFINITIONS) + 1))
    parser.add_argument("--chunk", type=int, default=1000, help="agents per import request")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--backend", choices=("postgres", "sqlite", "both"), default="both")
    args = parser.parse_args()
    sizes = [int(n) for n in args.sizes.split(",")] if args.sizes else [args.agents]
    for backend in ("postgres", "sqlite") if args.backend == "both" else (args.backend,):
        rows = []
        for agents in sizes:
            rows.append(run(backend, agents, args))
            report(rows[-1])
        if len(rows) > 1:
            curve(rows)


if __name__ == "__main__":
    main()
