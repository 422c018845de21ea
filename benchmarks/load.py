"""Load matrix: 4 API workers through PgBouncer (transaction mode) and direct to PostgreSQL.

Each (via, clients) cell runs its clients for `--seconds` against one `driftwarden serve
--workers N`, mixing reads, writes and schedule runs, and the run ends with one table: req/s,
p50/p99 latency, 500s (must be 0), 503s (each must carry Retry-After: the overload answer), lost
writes (acknowledged but not in the database afterwards, must be 0) and duplicates (stored twice,
must be 0). A client that gets a 503 waits its Retry-After and retries with the same
Idempotency-Key, as the script and schedule-run do. `--against DIR` also runs every cell on a
second source tree (e.g. `git archive` of the base commit, unpacked), alternating with this one,
and prints the ratio of req/s and p50: before and after in one run. `--restart-db-at S` restarts
PostgreSQL S seconds into each cell and reports how long until requests succeed again.
Bounded and local: 127.0.0.1 only. Creates and drops its own databases and PgBouncer.

    .venv/bin/python benchmarks/load.py [--via pgbouncer,direct] [--clients 1,50,200]
        [--seconds 30] [--workers 4] [--pool-timeout 5] [--against DIR] [--restart-db-at 10]

Bars: 0 x 500, 0 lost writes, 0 duplicates, every 503 with Retry-After.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from common import PgBouncer, free_port, org_with_admin_key
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from driftwarden.db import scratch

ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SCHEDULE_RUN = "/api/v1/system/contracts/drift/schedule-run"
POOL_SIZE, MAX_OVERFLOW = 5, 5  # per worker
BOUNCER_POOL = 20


class Database:
    """A private database on the server named by DATABASE_URL.

    Migrated, with an org and admin key.
    """

    def __init__(self) -> None:
        self.url = scratch.create_database("dw_load", server=ADMIN_URL)
        self.name = make_url(self.url).database
        self.direct = scratch.libpq_url(ADMIN_URL, self.name)

    def create(self) -> tuple[str, str]:
        engine = create_engine(self.url)
        try:
            return org_with_admin_key(engine, name="load")
        finally:
            engine.dispose()

    def scalar(self, sql: str, *args: object) -> int:
        with psycopg.connect(self.direct, autocommit=True) as conn:
            return conn.execute(sql, args).fetchone()[0]  # type: ignore[index]

    def drop(self) -> None:
        scratch.drop_database(self.url, server=ADMIN_URL)


class Server:
    """`driftwarden serve --workers N` on a database URL, with a bounded pool per worker."""

    def __init__(
        self, database_url: str, workers: int, pool_timeout: float, source: Path | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "LOG_LEVEL": "WARNING",
            "DB_POOL_SIZE": str(POOL_SIZE),
            "DB_MAX_OVERFLOW": str(MAX_OVERFLOW),
            "DB_POOL_TIMEOUT_SECONDS": str(pool_timeout),
        }
        if source is not None:  # another tree's package shadows the installed (editable) one
            env["PYTHONPATH"] = str(source / "src")
        # The log outlives __init__: the server writes to it until __exit__, and its name is
        # reported if the server never becomes ready, so it cannot be a `with` block here.
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - held open for the server's lifetime
            prefix="dw-load-serve-", suffix=".log", delete=False
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "driftwarden.cli",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> Server:
        last = "no answer"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                ready = httpx.get(f"{self.url}/readyz", timeout=5)
                if ready.status_code == 200:
                    return self
                last = f"{ready.status_code} {ready.text[:200]}"
            except httpx.TransportError as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"server did not become ready ({last}); see {self.log.name}")

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


class Stats:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix  # every agent this cell creates is named with it
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.status: Counter[str] = Counter()
        self.created: set[str] = set()
        self.attempted: set[str] = set()
        self.unknown_writes = 0
        self.unavailable: Counter[str] = Counter()  # 503 codes
        self.without_retry_after = 0
        self.slowest_503 = 0.0
        self.last_failure = 0.0  # monotonic time of the last 5xx or transport error
        self.first_ok_after_restart: float | None = None
        self.restarted_at: float | None = None


def _note(stats: Stats, kind: str, response: httpx.Response, seconds: float) -> None:
    stats.latency[kind].append(seconds)
    stats.status[f"{kind} {response.status_code}"] += 1
    now = time.monotonic()
    if response.status_code >= 500:
        stats.last_failure = now
    if response.status_code == 503:
        try:
            stats.unavailable[response.json()["error"]["code"]] += 1
        except (ValueError, KeyError, TypeError):
            stats.unavailable["not the envelope"] += 1
        stats.without_retry_after += "retry-after" not in response.headers
        stats.slowest_503 = max(stats.slowest_503, seconds)
    elif (
        response.status_code < 400
        and stats.restarted_at is not None
        and stats.first_ok_after_restart is None
        and now > stats.restarted_at
    ):
        stats.first_ok_after_restart = now


async def one_request(
    client: httpx.AsyncClient, stats: Stats, kind: str, method: str, url: str, **kwargs: object
) -> httpx.Response | None:
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)  # type: ignore[arg-type]
    except httpx.TransportError as exc:
        stats.status[f"{kind} {type(exc).__name__}"] += 1
        stats.last_failure = time.monotonic()
        return None
    _note(stats, kind, response, time.perf_counter() - started)
    return response


RETRYABLE = {503, 409}  # 409: the same key's first attempt is still held (in progress)


async def write_with_retries(client: httpx.AsyncClient, stats: Stats, deadline: float) -> None:
    """Create one agent; after a 503, wait Retry-After and send the same request and key again."""
    name, key = f"{stats.prefix}{uuid.uuid4().hex}", uuid.uuid4().hex
    stats.attempted.add(name)
    for _ in range(6):
        response = await one_request(
            client,
            stats,
            "write",
            "POST",
            "/api/v1/agents",
            json={"name": name},
            headers={"Idempotency-Key": key},
        )
        if response is not None and response.status_code == 201:
            stats.created.add(name)
            return
        if response is not None and response.status_code not in RETRYABLE:
            return
        if time.monotonic() > deadline + 30:
            break
        wait = float(response.headers.get("retry-after", 1)) if response is not None else 1.0
        await asyncio.sleep(min(wait, 5.0) * random.uniform(0.5, 1.0))
    stats.unknown_writes += 1


async def client_loop(
    client: httpx.AsyncClient,
    stats: Stats,
    org_id: str,
    agent_ids: list[str],
    deadline: float,
    with_schedule: bool,
) -> None:
    rng = random.Random()
    while time.monotonic() < deadline:
        roll = rng.random()
        if roll < 0.45:
            await one_request(client, stats, "read", "GET", "/api/v1/agents", params={"limit": 20})
        elif roll < 0.65:
            await one_request(
                client, stats, "read", "GET", f"/api/v1/agents/{rng.choice(agent_ids)}"
            )
        elif roll < 0.90 or not with_schedule:
            await write_with_retries(client, stats, deadline)
        else:
            await one_request(
                client,
                stats,
                "schedule",
                "POST",
                SCHEDULE_RUN,
                json={"org_id": org_id},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )


def pooler_clients(port: int, database: str) -> tuple[int, int]:
    """(client connections into PgBouncer, of which waiting for a server) for one database."""
    out = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "postgres",
            "-d",
            "pgbouncer",
            "-A",
            "-F",
            "|",
            "-c",
            "SHOW POOLS",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    header, *rows = out.strip().splitlines()
    names = header.split("|")
    for row in rows:
        # Not strict: psql -A (without -t) ends with a "(N rows)" footer of a single field.
        values = dict(zip(names, row.split("|"), strict=False))
        if values.get("database") == database:
            return int(values["cl_active"]) + int(values["cl_waiting"]), int(values["cl_waiting"])
    return 0, 0


def sample_connections(
    db: Database, bouncer_port: int | None, stop: threading.Event, peak: list[int]
) -> None:
    """peak = [server connections, clients into the pooler, clients waiting for a server]."""
    while not stop.is_set():
        try:
            servers = (
                db.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", db.name) - 1
            )
            clients, waiting = (
                pooler_clients(bouncer_port, db.name) if bouncer_port else (servers, 0)
            )
        except (psycopg.OperationalError, subprocess.CalledProcessError):  # a restart in progress
            stop.wait(0.5)
            continue
        peak[:] = [max(peak[0], servers), max(peak[1], clients), max(peak[2], waiting)]
        stop.wait(0.2)


def restart_database(stats: Stats, after: float) -> None:
    """Restart the PostgreSQL cluster `after` seconds from now (the API server keeps running)."""
    time.sleep(after)
    stats.restarted_at = time.monotonic()
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    print(f"database restarted in {time.monotonic() - stats.restarted_at:.1f} s")


@dataclass
class Target:
    """One running server and what a cell needs to drive it."""

    server: Server
    db: Database
    key: str
    org_id: str
    agent_ids: list[str]
    with_schedule: bool
    bouncer_port: int | None


async def seed(server: Server, key: str) -> tuple[list[str], bool]:
    """Twenty agents to read, and the drift policy on so schedule runs do their work."""
    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60
    ) as client:
        seeded = [
            await client.post("/api/v1/agents", json={"name": f"seed-{i}"}) for i in range(20)
        ]
        policy = await client.post("/api/v1/system/contracts/drift-policy", json={"enabled": True})
        return [r.json()["data"]["id"] for r in seeded], policy.status_code == 200


async def run_load(
    target: Target, stats: Stats, clients: int, seconds: float, restart_at: float | None
) -> float:
    # Idle connections close before uvicorn's 5 s keep-alive timeout would, so a request is
    # never sent on a connection the server is closing at that instant (a client-side ReadError).
    limits = httpx.Limits(
        max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=2.0
    )
    headers = {"Authorization": f"Bearer {target.key}"}
    async with httpx.AsyncClient(
        base_url=target.server.url, headers=headers, limits=limits, timeout=60
    ) as client:
        started = time.monotonic()
        if restart_at is not None:
            threading.Thread(target=restart_database, args=(stats, restart_at), daemon=True).start()
        await asyncio.gather(
            *(
                client_loop(
                    client,
                    stats,
                    target.org_id,
                    target.agent_ids,
                    started + seconds,
                    target.with_schedule,
                )
                for _ in range(clients)
            )
        )
        return time.monotonic() - started


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) >= 2 else float("nan")


@dataclass
class Row:
    """One line of the final table."""

    label: str
    clients: int
    rps: float
    p50: float
    p99: float
    internal: int
    unavailable: int
    without_retry_after: int
    lost: int
    twice: int
    transport: int

    @property
    def failed(self) -> bool:
        return bool(
            self.internal or self.lost or self.twice or self.transport or self.without_retry_after
        )


def cell(target: Target, label: str, clients: int, args: argparse.Namespace) -> Row:
    """Run one (server, clients) cell; print its detail; its row for the table."""
    stats = Stats(prefix=f"load-{uuid.uuid4().hex[:8]}-")
    stop, peak = threading.Event(), [0, 0, 0]
    sampler = threading.Thread(
        target=sample_connections, args=(target.db, target.bouncer_port, stop, peak), daemon=True
    )
    sampler.start()
    try:
        elapsed = asyncio.run(run_load(target, stats, clients, args.seconds, args.restart_db_at))
    finally:
        stop.set()
        sampler.join()
    return report(stats, elapsed, target, peak, label, clients, args.workers)


def report(
    stats: Stats,
    elapsed: float,
    target: Target,
    peak: list[int],
    label: str,
    clients: int,
    workers: int,
) -> Row:
    every = [v for values in stats.latency.values() for v in values]
    print(f"\n{label}: {clients} clients, {workers} workers, {elapsed:.1f} s")
    for kind, values in sorted(stats.latency.items()):
        print(
            f"  {kind:9s} n={len(values):6d}  p50 {pct(values, 50):7.1f} ms  "
            f"p99 {pct(values, 99):7.1f} ms"
        )
    print("  statuses:", dict(sorted(stats.status.items())))
    db, like = target.db, stats.prefix + "%"
    stored = db.scalar("SELECT count(*) FROM agents WHERE name LIKE %s", like)
    kept = db.scalar(
        "SELECT count(DISTINCT name) FROM agents WHERE name = ANY(%s)", list(stats.created)
    )
    twice = db.scalar("SELECT count(*) - count(DISTINCT name) FROM agents WHERE name LIKE %s", like)
    print(
        f"  503s: {dict(stats.unavailable)} (slowest {stats.slowest_503:.2f} s); writes "
        f"acknowledged {len(stats.created)}, rows stored {stored}, unknown outcome "
        f"{stats.unknown_writes}"
    )
    if stats.restarted_at is not None:
        back = (stats.first_ok_after_restart or float("nan")) - stats.restarted_at
        print(
            f"  database restart: first success {back:.1f} s after it began; last failure "
            f"{stats.last_failure - stats.restarted_at:.1f} s after it began"
        )
    bound = workers * (POOL_SIZE + MAX_OVERFLOW)
    if target.bouncer_port:
        print(
            f"  peak connections: {peak[1]} into PgBouncer (bound {bound}), {peak[2]} waiting; "
            f"{peak[0]} from PgBouncer to PostgreSQL (pool {BOUNCER_POOL})"
        )
    else:
        print(f"  peak connections to PostgreSQL: {peak[0]} (bound {bound})")
    return Row(
        label=label,
        clients=clients,
        rps=len(every) / elapsed,
        p50=pct(every, 50),
        p99=pct(every, 99),
        internal=sum(n for status, n in stats.status.items() if status.endswith(" 500")),
        unavailable=sum(stats.unavailable.values()),
        without_retry_after=stats.without_retry_after,
        lost=len(stats.created) - kept,
        twice=twice,
        transport=sum(n for status, n in stats.status.items() if not status[-1].isdigit()),
    )


@contextlib.contextmanager
def serving(via: str, args: argparse.Namespace, source: Path | None):  # type: ignore[no-untyped-def]
    """A fresh database, PgBouncer in front if `via` says so, and a seeded server on it."""
    db = Database()
    try:
        org_id, key = db.create()
        with PgBouncer() if via == "pgbouncer" else contextlib.nullcontext() as bouncer:
            port = bouncer.port if bouncer else make_url(ADMIN_URL).port or 5432
            url = f"postgresql://postgres@127.0.0.1:{port}/{db.name}"
            with Server(url, args.workers, args.pool_timeout, source) as server:
                agent_ids, with_schedule = asyncio.run(seed(server, key))
                port = bouncer.port if bouncer else None
                yield Target(server, db, key, org_id, agent_ids, with_schedule, port)
    finally:
        db.drop()


def table(rows: list[Row]) -> None:
    print(
        f"\n{'via':20s} {'clients':>7s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'500s':>5s} "
        f"{'503s (no Retry-After)':>22s} {'lost writes':>11s} {'duplicates':>10s} {'transport':>9s}"
    )
    for r in rows:
        print(
            f"{r.label:20s} {r.clients:7d} {r.rps:8.1f} {r.p50:8.1f} {r.p99:8.1f} {r.internal:5d} "
            f"{f'{r.unavailable} ({r.without_retry_after})':>22s} {r.lost:11d} {r.twice:10d} "
            f"{r.transport:9d}"
        )


def ratios(rows: list[Row]) -> None:
    """This tree against --against, cell by cell: req/s and p50, this / base."""
    base = {(r.label.removesuffix(" base"), r.clients): r for r in rows if r.label.endswith("base")}
    print()
    for r in rows:
        b = base.get((r.label, r.clients))
        if b is not None:
            print(
                f"{r.label} {r.clients} clients: req/s {r.rps / b.rps:.2f}x the base "
                f"({b.rps:.1f} -> {r.rps:.1f}), p50 {r.p50 / b.p50:.2f}x ({b.p50:.1f} -> "
                f"{r.p50:.1f} ms), p99 {r.p99 / b.p99:.2f}x ({b.p99:.1f} -> {r.p99:.1f} ms)"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,50,200", help="comma-separated client counts")
    parser.add_argument("--via", default="pgbouncer,direct", help="pgbouncer, direct or both")
    parser.add_argument("--seconds", type=float, default=30.0, help="per cell")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pool-timeout", type=float, default=5.0, help="DB_POOL_TIMEOUT_SECONDS")
    parser.add_argument("--against", type=Path, default=None, help="a second source tree")
    parser.add_argument(
        "--restart-db-at",
        type=float,
        default=None,
        help="restart PostgreSQL this many seconds into each cell",
    )
    args = parser.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    trees: list[tuple[str, Path | None]] = [("", None)]
    if args.against is not None:
        trees.insert(0, (" base", args.against.resolve()))
    rows: list[Row] = []
    for via in args.via.split(","):
        with contextlib.ExitStack() as stack:
            targets = [(via + s, stack.enter_context(serving(via, args, t))) for s, t in trees]
            for clients in counts:  # trees alternate within a cell count: same machine load
                rows += [cell(target, label, clients, args) for label, target in targets]
    table(rows)
    if args.against is not None:
        ratios(rows)
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    return 1 if any(r.failed for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
