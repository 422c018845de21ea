"""The deduped `POST /system/contracts/drift/schedule-run` against its floor, side by side.

Run: .venv/bin/python benchmarks/schedule_run.py [--calls 300] [--agents 200] [--bindings 5]
        [--history-days 0] [--prepare-threshold N] [--via direct|pgbouncer]
Uses the Postgres at DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
creating and dropping a database of its own, and one uvicorn process on 127.0.0.1. With
`--via pgbouncer` the server reaches it through a private PgBouncer in transaction mode
(scripts/ci/pgbouncer.sh), as it would through Supabase's transaction pooler.

The floor is `GET /api/v1/agents?limit=1` with the same API key: an authenticated request that
touches the database. Both are timed alternately against the same server, so load on the machine
weighs on both alike. Bar: median deduped schedule-run (the window already executed, alerts off)
<= 1.5x the floor's median; the alerting path (no destination: every call's send fails and bumps
the escalation) is printed beside it. With `--history-days 30` the org's daily schedule already
has 30 days of a scheduler retrying every 5 minutes (8 640 triggers, one executed a day), the
rows the summary of every call covers (the database counts them per day as they are inserted).
`--prepare-threshold N` starts the server with DB_PREPARE_THRESHOLD=N (psycopg prepares a
statement server-side after N runs on a connection, for direct connections and poolers that keep
prepared statements); by default it is unset, as it must be behind a transaction pooler, and it is
refused with `--via pgbouncer` (Debian's PgBouncer 1.18, which CI installs, cannot keep them).

The server is the app with a debug hook (`capturing_app`, this module only): SQLAlchemy's
`before_cursor_execute`, `commit`, `rollback` and pool `checkout` events append to a file, so the
statements each path issues are printed from the very server that was timed. A checkout runs the
pool's pre-ping (`SELECT 1`), and psycopg sends `BEGIN` before a transaction's first statement:
the round-trip count adds both.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
from common import PgBouncer, free_port
from sqlalchemy import text
from sqlalchemy.engine import make_url

from driftwarden.agents.models import Agent
from driftwarden.auth import service as auth_service
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.db import scratch
from driftwarden.db.engine import make_engine, make_session_factory
from driftwarden.settings import Settings

BAR = 1.5
PATH = "/api/v1/system/contracts/drift/schedule-run"
FLOOR_PATH = "/api/v1/agents?limit=1"
CAPTURE_ENV = "SCHEDULE_RUN_CAPTURE"


def seed(url: str, *, agents: int, bindings: int) -> tuple[str, str]:
    """An org, an admin key, and `agents` agents, each bound to `bindings` gates, half drifted."""
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


HISTORY = text(
    """
    INSERT INTO contract_drift_trigger_runs (id, org_id, schedule_name, window_minutes,
        window_start, window_end, dedupe_key, outcome, dry_run, forced, started_at)
    SELECT gen_random_uuid(), CAST(:org AS uuid), 'daily', 1440, day, day + interval '1 day',
        CAST(:org AS text) || ':daily:1440:'
            || to_char(day AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ':*',
        CASE WHEN at = day THEN 'executed' ELSE 'deduped' END, false, false, at
    FROM generate_series(
        date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - :days * interval '1 day',
        date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '5 minutes',
        interval '5 minutes') AS at,
        LATERAL (SELECT date_trunc('day', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS day) AS d
    """
)


def add_history(url: str, org_id: str, days: int) -> int:
    """The org's daily schedule as a scheduler retrying every 5 minutes left it over the last
    `days` days (one executed trigger a day, the others deduped), then VACUUM ANALYZE as
    autovacuum would: the rows the summary of every call counts. Returns the rows added."""
    engine = make_engine(Settings(DATABASE_URL=url), null_pool=True)
    with engine.begin() as connection:
        added = connection.execute(HISTORY, {"org": org_id, "days": days}).rowcount
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE contract_drift_trigger_runs")
    engine.dispose()
    return added


def capturing_app():  # type: ignore[no-untyped-def]
    """The real app; its engine's round trips appended to the file $SCHEDULE_RUN_CAPTURE names."""
    from sqlalchemy import event

    from driftwarden.api.app import create_app

    app = create_app()
    engine = app.state.engine
    out = Path(os.environ[CAPTURE_ENV]).open("a", buffering=1)  # noqa: SIM115 - the server's life

    def write(line: str) -> None:  # one write per line, on a file kept open: cheap beside a query
        out.write(line.replace("\n", " ") + "\n")

    def transaction(word: str):  # type: ignore[no-untyped-def]
        def listener(conn) -> None:  # type: ignore[no-untyped-def]
            if conn.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                write(word)  # in autocommit psycopg sends neither BEGIN nor COMMIT

        return listener

    def statement(_conn, _cursor, sql: str, *_) -> None:  # type: ignore[no-untyped-def]
        write(" ".join(sql.split()))

    event.listen(engine.pool, "checkout", lambda *_: write("SELECT 1 -- checkout's pre-ping"))
    event.listen(engine, "begin", transaction("BEGIN"))
    event.listen(engine, "commit", transaction("COMMIT"))
    event.listen(engine, "rollback", transaction("ROLLBACK"))
    event.listen(engine, "before_cursor_execute", statement)
    return app


def serve(url: str, port: int, capture: Path, prepare_threshold: int | None) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING", CAPTURE_ENV: str(capture)}
    env["DB_PREPARE_THRESHOLD"] = "" if prepare_threshold is None else str(prepare_threshold)
    command = [sys.executable, "-m", "uvicorn", "--factory", "schedule_run:capturing_app"]
    command += ["--app-dir", str(Path(__file__).parent), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen([*command, "--log-level", "warning"], env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("uvicorn did not become ready")


def deduped_call(http: httpx.Client, body: dict) -> Callable[[], dict]:
    def call() -> dict:
        response = http.post(PATH, json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
        if response.status_code != 200:
            raise SystemExit(f"schedule-run: HTTP {response.status_code} {response.text[:300]}")
        return response.json()["data"]

    return call


def floor_call(http: httpx.Client) -> Callable[[], dict]:
    def call() -> dict:
        response = http.get(FLOOR_PATH)
        if response.status_code != 200:
            raise SystemExit(f"floor: HTTP {response.status_code} {response.text[:300]}")
        return response.json()

    return call


def ms(call: Callable[[], dict]) -> tuple[float, dict]:
    started = time.perf_counter()
    data = call()
    return (time.perf_counter() - started) * 1000, data


def side_by_side(run: Callable[[], dict], floor: Callable[[], dict], calls: int) -> tuple:
    """`calls` of each, alternating (latency, not throughput); the medians."""
    runs, floors = [], []
    for _ in range(calls):
        elapsed, data = ms(run)
        assert data["trigger"]["deduped"] is True, data["trigger"]
        runs.append(elapsed)
        floors.append(ms(floor)[0])
    return statistics.median(runs), statistics.median(floors), _p95(runs), _p95(floors)


def durable_commit_ms(url: str, calls: int = 100) -> float:
    """Median of a one-row INSERT committed durably: what one disk flush costs on this server.

    The deduped run must commit its records; the floor's read commits nothing. Printed so the
    ratio can be read against the disk under it.
    """
    with psycopg.connect(scratch.libpq_url(url), autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_commit_probe (n int)")
        times = []
        for n in range(calls):
            started = time.perf_counter()
            conn.execute("INSERT INTO bench_commit_probe VALUES (%s)", (n,))
            times.append((time.perf_counter() - started) * 1000)
        conn.execute("DROP TABLE bench_commit_probe")
    return statistics.median(times)


def _p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


def statements_of(capture: Path, call: Callable[[], dict]) -> list[str]:
    """What the server issued for one call."""
    start = capture.stat().st_size
    call()
    with capture.open() as lines:
        lines.seek(start)
        return [line.rstrip("\n") for line in lines]


TRANSACTION_ENDS = frozenset({"BEGIN", "COMMIT", "ROLLBACK"})


def print_statements(label: str, lines: list[str]) -> None:
    """Every line is one round trip to Postgres."""
    sql = [line for line in lines if line not in TRANSACTION_ENDS and "pre-ping" not in line]
    print(f"{label}: {len(sql)} statements, {len(lines)} round trips")
    for line in lines:
        print(f"    {line[:150]}")


def print_ratio(label: str, figures: tuple) -> None:
    run, floor, run_p95, floor_p95 = figures
    verdict = "met" if run / floor <= BAR else "NOT met"
    print(
        f"{label:<34} median {run:6.2f} ms (p95 {run_p95:6.2f})  floor {floor:6.2f} ms "
        f"(p95 {floor_p95:6.2f})  ratio {run / floor:4.2f}x  bar {BAR}x: {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--bindings", type=int, default=5)
    parser.add_argument(
        "--history-days",
        type=int,
        default=0,
        help="days of a schedule retried every 5 minutes already recorded (30: 8 640 triggers)",
    )
    parser.add_argument(
        "--prepare-threshold",
        type=int,
        default=None,
        help="the server's DB_PREPARE_THRESHOLD (default: unset, no prepared statements)",
    )
    parser.add_argument(
        "--via",
        choices=("direct", "pgbouncer"),
        default="direct",
        help="how the server reaches PostgreSQL (default: direct)",
    )
    args = parser.parse_args()
    if args.via == "pgbouncer" and args.prepare_threshold is not None:
        parser.error(
            "--prepare-threshold needs --via direct: this PgBouncer keeps no prepared statements"
        )
    url = scratch.create_database("dw_bench_schedule")
    capture = Path(f"/tmp/dw_bench_schedule_{os.getpid()}.sql")
    capture.write_text("")
    try:
        org_id, key = seed(url, agents=args.agents, bindings=args.bindings)
        if args.history_days:
            added = add_history(url, org_id, args.history_days)
            print(f"history: {added} triggers over {args.history_days} days before this one")
        with PgBouncer() if args.via == "pgbouncer" else contextlib.nullcontext() as bouncer:
            served = url
            if bouncer is not None:
                served = make_url(url).set(port=bouncer.port).render_as_string(hide_password=False)
            bench_server(served, org_id, key, capture, args)
        commit = durable_commit_ms(url)
        print(f"one durable commit (INSERT, fsync) on this server: median {commit:.2f} ms")
    finally:
        scratch.drop_database(url)
        capture.unlink(missing_ok=True)


def bench_server(url: str, org_id: str, key: str, capture: Path, args: argparse.Namespace) -> None:
    """One uvicorn on `url` (PostgreSQL or the PgBouncer before it), benchmarked, stopped."""
    port = int(os.environ.get("BENCH_PORT", "0")) or free_port()
    process = serve(url, port, capture, args.prepare_threshold)
    try:
        shown = "unset" if args.prepare_threshold is None else args.prepare_threshold
        print(f"server: via {args.via}, DB_PREPARE_THRESHOLD={shown}")
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
            run_bench(http, org_id, capture, args)
    finally:
        process.terminate()
        process.wait(timeout=20)


def run_bench(http: httpx.Client, org_id: str, capture: Path, args: argparse.Namespace) -> None:
    policy = "/api/v1/system/contracts/drift-policy"
    http.post(policy, json={"enabled": True, "min_drift": "warning"})
    run, floor = deduped_call(http, {"org_id": org_id}), floor_call(http)
    executed_ms, first = ms(run)
    print(
        f"bindings {args.agents * args.bindings}, executed schedule-run (first of window) "
        f"{executed_ms:.2f} ms, {first['trigger']['promote']['created_pattern_count']} patterns"
    )
    for _ in range(20):  # warm the connection pool and the statement caches
        run(), floor()
    print_ratio("deduped, alerts off", side_by_side(run, floor, args.calls))
    print_statements(f"GET {FLOOR_PATH} (floor)", statements_of(capture, floor))
    print_statements("deduped schedule-run, alerts off", statements_of(capture, run))
    http.post(policy, json={"alert_enabled": True})
    run()
    print_ratio("deduped, alerting, delivery failing", side_by_side(run, floor, args.calls // 3))
    print_statements("deduped schedule-run, alerting", statements_of(capture, run))


if __name__ == "__main__":
    main()
