"""Load test: 4 API workers on Postgres through PgBouncer (transaction mode), 200 clients for 30 s.

Mixes reads, writes and schedule runs; reports throughput, p50/p99 latency, 500s, 503s (by code,
with or without Retry-After, and how long they took), the peak of server connections, and checks
that no acknowledged write was lost and none was stored twice by counting rows afterwards. A
client that gets a 503 waits its Retry-After and retries with the same Idempotency-Key, as the
script and schedule-run do. `--restart-db-at S` restarts PostgreSQL S seconds into the load and
reports how long until requests succeed again (the server process is not restarted).
Bounded and local: 127.0.0.1 only. Creates and drops its own database and PgBouncer.

    .venv/bin/python benchmarks/load.py [--clients 200] [--seconds 30] [--workers 4]
        [--pool-timeout 5] [--restart-db-at 10]
"""

from __future__ import annotations

import argparse
import asyncio
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
from pathlib import Path

import httpx
import psycopg
from common import org_with_admin_key
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from driftwarden.db import scratch

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SCHEDULE_RUN = "/api/v1/system/contracts/drift/schedule-run"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


class PgBouncer:
    """scripts/ci/pgbouncer.sh on a free port, in a private state directory."""

    def __init__(self) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "PGBOUNCER_PORT": str(self.port),
            "PGBOUNCER_DIR": tempfile.mkdtemp(prefix="dw-load-pgbouncer-"),
        }

    def __enter__(self) -> PgBouncer:
        subprocess.run(
            [str(ROOT / "scripts/ci/pgbouncer.sh"), "start"],
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run([str(ROOT / "scripts/ci/pgbouncer.sh"), "stop"], env=self.env, check=False)


class Server:
    """`driftwarden serve --workers N` against the pooler, with a bounded pool per worker."""

    def __init__(self, database_url: str, workers: int, pool_timeout: float) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "LOG_LEVEL": "WARNING",
            "DB_POOL_SIZE": "5",
            "DB_MAX_OVERFLOW": "5",
            "DB_POOL_TIMEOUT_SECONDS": str(pool_timeout),
        }
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
    def __init__(self) -> None:
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
    name, key = f"load-{uuid.uuid4().hex}", uuid.uuid4().hex
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
    db: Database, bouncer_port: int, stop: threading.Event, peak: list[int]
) -> None:
    """peak = [server connections, clients into the pooler, clients waiting for a server]."""
    while not stop.is_set():
        try:
            servers = (
                db.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", db.name) - 1
            )
            clients, waiting = pooler_clients(bouncer_port, db.name)
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


async def run_load(
    server: Server,
    key: str,
    org_id: str,
    clients: int,
    seconds: float,
    restart_at: float | None = None,
) -> tuple[Stats, float]:
    stats = Stats()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=server.url, headers=headers, limits=limits, timeout=60
    ) as client:
        seeded = [
            await client.post("/api/v1/agents", json={"name": f"seed-{i}"}) for i in range(20)
        ]
        agent_ids = [r.json()["data"]["id"] for r in seeded]
        policy = await client.post("/api/v1/system/contracts/drift-policy", json={"enabled": True})
        with_schedule = policy.status_code == 200
        started = time.monotonic()
        if restart_at is not None:
            threading.Thread(target=restart_database, args=(stats, restart_at), daemon=True).start()
        await asyncio.gather(
            *(
                client_loop(client, stats, org_id, agent_ids, started + seconds, with_schedule)
                for _ in range(clients)
            )
        )
        return stats, time.monotonic() - started


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) >= 2 else float("nan")


def report(
    stats: Stats, elapsed: float, db: Database, peak: list[int], workers: int, clients: int
) -> int:
    every = [v for values in stats.latency.values() for v in values]
    print(f"\n{clients} clients, {workers} workers, {elapsed:.1f} s, PgBouncer transaction mode")
    print(f"throughput: {len(every) / elapsed:.1f} req/s ({len(every)} responses)")
    print(f"latency all: p50 {pct(every, 50):.1f} ms  p99 {pct(every, 99):.1f} ms")
    for kind, values in sorted(stats.latency.items()):
        print(
            f"  {kind:9s} n={len(values):6d}  p50 {pct(values, 50):7.1f} ms  "
            f"p99 {pct(values, 99):7.1f} ms"
        )
    print("statuses:", dict(sorted(stats.status.items())))
    internal = sum(n for label, n in stats.status.items() if label.split()[-1] == "500")
    transport = sum(n for label, n in stats.status.items() if not label.split()[-1].isdigit())
    stored = db.scalar("SELECT count(*) FROM agents WHERE name LIKE 'load-%%'")
    kept = db.scalar(
        "SELECT count(DISTINCT name) FROM agents WHERE name = ANY(%s)", list(stats.created)
    )
    twice = db.scalar(
        "SELECT count(*) - count(DISTINCT name) FROM agents WHERE name LIKE 'load-%%'"
    )
    lost = len(stats.created) - kept
    print(
        f"500s: {internal}  503s: {dict(stats.unavailable)} (without Retry-After: "
        f"{stats.without_retry_after}, slowest {stats.slowest_503:.2f} s)  "
        f"transport errors: {transport}"
    )
    print(
        f"writes acknowledged: {len(stats.created)}  rows stored: {stored}  lost writes: {lost}  "
        f"stored twice: {twice}  unknown-outcome writes: {stats.unknown_writes}"
    )
    if stats.restarted_at is not None:
        back = (stats.first_ok_after_restart or float("nan")) - stats.restarted_at
        print(
            f"database restart: first success {back:.1f} s after it began; last failure "
            f"{stats.last_failure - stats.restarted_at:.1f} s after it began"
        )
    print(
        f"peak connections: {peak[1]} from the workers into PgBouncer (bound {workers} x (5 + 5) = "
        f"{workers * 10}), {peak[2]} of them waiting; "
        f"{peak[0]} from PgBouncer to PostgreSQL (pool 20)"
    )
    return 1 if internal or lost or twice or transport or stats.without_retry_after else 0


def ratios(one: Stats, one_elapsed: float, many: Stats, many_elapsed: float, clients: int) -> None:
    """How the same server scales from one client to many."""
    one_all = [v for values in one.latency.values() for v in values]
    many_all = [v for values in many.latency.values() for v in values]
    gain = (len(many_all) / many_elapsed) / (len(one_all) / one_elapsed)
    print(
        f"one client alone: {len(one_all) / one_elapsed:.1f} req/s, p50 {pct(one_all, 50):.1f} ms; "
        f"{clients} clients: {gain:.1f}x the throughput, "
        f"p50 {pct(many_all, 50) / pct(one_all, 50):.1f}x "
        f"the latency"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--baseline-seconds", type=float, default=5.0, help="one client first, for ratios"
    )
    parser.add_argument("--pool-timeout", type=float, default=5.0, help="DB_POOL_TIMEOUT_SECONDS")
    parser.add_argument(
        "--restart-db-at",
        type=float,
        default=None,
        help="restart PostgreSQL this many seconds into the load",
    )
    args = parser.parse_args()
    db = Database()
    org_id, key = db.create()
    try:
        with PgBouncer() as bouncer:
            pooled = f"postgresql://postgres@127.0.0.1:{bouncer.port}/{db.name}"
            with Server(pooled, args.workers, args.pool_timeout) as server:
                stop, peak = threading.Event(), [0, 0, 0]
                sampler = threading.Thread(
                    target=sample_connections, args=(db, bouncer.port, stop, peak), daemon=True
                )
                one, one_elapsed = asyncio.run(
                    run_load(server, key, org_id, 1, args.baseline_seconds)
                )
                sampler.start()
                stats, elapsed = asyncio.run(
                    run_load(server, key, org_id, args.clients, args.seconds, args.restart_db_at)
                )
                stop.set()
                sampler.join()
            stats.created |= one.created
            status = report(stats, elapsed, db, peak, args.workers, args.clients)
            ratios(one, one_elapsed, stats, elapsed, args.clients)
            return status
    finally:
        db.drop()


if __name__ == "__main__":
    sys.exit(main())
