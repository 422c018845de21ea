"""Scale curve on Postgres: import, scan and server peak RSS at 10 000 to 1 000 000 bindings.

For each size (10 bindings per agent over the 10 definitions of drift_scan.py, its fleet generator
and versions) it creates a private database, imports the fleet with POST /api/v1/contracts/import
in chunks through a real uvicorn server (bodies JSON-encoded before the clock starts, one
Idempotency-Key per chunk as a retrying client sends), and after each chunk times a bare psycopg
`COPY` of the same agents and bindings into the same tables of a second fresh database: the
import's floor, measured side by side. On both sides the definitions are written untimed first
(and the server warmed with a one-agent dry run). A second server then times
GET /api/v1/contracts/drift against the raw-cursor read of every (bound, current) pair
(drift_scan.py's floor). The peak RSS (VmHWM) of each server is read as it stops.

    .venv/bin/python benchmarks/scale_curve.py [--sizes 10000,100000,1000000] [--chunk 2000]
        [--runs 5] [--repeat 1]

With --repeat N each size is measured N times; the table shows medians (ratios are the median of
each run's side-by-side ratio) and the largest RSS.

Bars: import <= 3x the COPY floor; scan <= 1.0x the raw read; server peak RSS <= 400 MB. The
`request ms` row (no bar) is GET /api/v1/agents?limit=1 timed in the same rounds: what any
authenticated request costs before its own work, against the same raw read.
Postgres at DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import psycopg
from drift_scan import DEFINITIONS, FLOOR_SQL, Server, Target, fleet_chunks
from psycopg.types.json import Jsonb

from driftwarden.db import scratch

IMPORT = "/api/v1/contracts/import"
REQUEST_FLOOR = "/api/v1/agents?limit=1"
PER_AGENT = 10
IMPORT_BAR = 3.0
SCAN_BAR = 1.0
RSS_BAR_MB = 400.0
AGENT_COLUMNS = ("id", "org_id", "external_id", "name", "status", "metadata")
AGENT_COLUMNS += ("created_at", "updated_at")
BINDING_COLUMNS = ("id", "org_id", "agent_id", "definition_id", "enabled", "config")
BINDING_COLUMNS += ("definition_contract_version", "created_at", "updated_at")


def encoded_chunks(size: int, chunk: int) -> list[bytes]:
    """The fleet's import documents, JSON-encoded now so the client's encoding is not timed."""
    return [orjson.dumps(doc) for doc in fleet_chunks(size // PER_AGENT, PER_AGENT, chunk)]


def _definition_ids(cursor: psycopg.Cursor, org_id: uuid.UUID, now: datetime) -> dict:
    """The 10 definitions, inserted untimed (the import's first chunk creates them too)."""
    ids = {}
    for kind, key, version in DEFINITIONS:
        ids[(kind, key)] = uuid.uuid4(), version
        cursor.execute(
            "INSERT INTO contract_definitions (id, org_id, definition_type, key, name,"
            " contract_version, default_config, is_active, created_at, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, '{}', true, %s, %s)",
            (ids[(kind, key)][0], org_id, kind, key, key, version, now, now),
        )
    return ids


def _rows(body: bytes, org_id: uuid.UUID, defs: dict, now: datetime) -> tuple[list, list]:
    """(agent rows, binding rows) of one chunk, as the import stores them."""
    agents, bindings = [], []
    for agent in orjson.loads(body)["agents"]:
        agent_id = uuid.uuid4()
        row = (agent_id, org_id, agent["external_id"], agent["name"], agent["status"], Jsonb({}))
        agents.append((*row, now, now))
        for b in agent["bindings"]:
            definition_id, current = defs[(b["definition_type"], b["key"])]
            version = b.get("definition_contract_version", current)
            bindings.append(
                (uuid.uuid4(), org_id, agent_id, definition_id, b["enabled"], Jsonb({}), version)
                + (now, now)
            )
    return agents, bindings


class CopyFloor:
    """A bare COPY of the same agents and bindings into a second fresh database, chunk by chunk.

    Rows are prepared untimed, so the floor is the database's load (indexes, foreign keys,
    commit) and psycopg's row writing, nothing of the server's.
    """

    def __init__(self, url: str, org_id: str) -> None:
        self.conn = psycopg.connect(scratch.libpq_url(url))
        self.org, self.now = uuid.UUID(org_id), datetime.now(UTC)
        with self.conn.cursor() as cursor:
            self.defs = _definition_ids(cursor, self.org, self.now)
        self.conn.commit()

    def load(self, body: bytes) -> float:
        """Seconds to COPY one chunk's rows and commit, as the import commits each chunk."""
        agents, bindings = _rows(body, self.org, self.defs, self.now)
        started = time.perf_counter()
        with self.conn.cursor() as cursor:
            for table, columns, rows in (
                ("agents", AGENT_COLUMNS, agents),
                ("contract_bindings", BINDING_COLUMNS, bindings),
            ):
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        self.conn.commit()
        return time.perf_counter() - started


def _warm_up(client: httpx.Client, body: bytes) -> None:
    """The definitions (the floor inserts them untimed too), then a one-agent dry run."""
    doc = orjson.loads(body)
    client.post(IMPORT, json={"definitions": doc["definitions"]}).raise_for_status()
    one = {"agents": doc["agents"][:1]}
    client.post(IMPORT, json=one, params={"dry_run": "true"}).raise_for_status()


def import_beside_floor(server: Server, key: str, floor: CopyFloor, bodies: list[bytes]) -> dict:
    """Each chunk POSTed, then the same chunk COPYed: side by side, under the same load."""
    spent = {"import": 0.0, "copy": 0.0, "created": 0}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=600) as client:
        _warm_up(client, bodies[0])
        for body in bodies:
            started = time.perf_counter()
            response = client.post(
                IMPORT,
                content=body,
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            spent["import"] += time.perf_counter() - started
            response.raise_for_status()
            spent["created"] += response.json()["data"]["bindings"]["created"]
            spent["copy"] += floor.load(body)
    return spent


def settle(url: str) -> None:
    """VACUUM (ANALYZE) the imported tables, as autovacuum soon would; plans do not wait on it."""
    with psycopg.connect(scratch.libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) agents, contract_bindings, contract_definitions")


def scans_beside_floor(server: Server, url: str, key: str, org_id: str, runs: int) -> dict:
    """The HTTP scan, the raw read of every (bound, current) pair and the cheapest authenticated
    request (GET /agents?limit=1: what any request costs before its own work), alternately."""
    headers = {"Authorization": f"Bearer {key}"}
    raw_sql = str(FLOOR_SQL).replace(":org", "%s")
    org, times = uuid.UUID(org_id), {"scan": [], "floor": [], "request": []}
    with (
        httpx.Client(base_url=server.url, headers=headers, timeout=600) as client,
        psycopg.connect(scratch.libpq_url(url)) as conn,
    ):
        work = {
            "scan": lambda: client.get("/api/v1/contracts/drift").raise_for_status(),
            "floor": lambda: conn.execute(raw_sql, (org,)).fetchall(),
            "request": lambda: client.get(REQUEST_FLOOR).raise_for_status(),
        }
        body = work["scan"]().json()["data"]  # warm-up
        work["floor"]()
        for _ in range(runs):
            for name, read in work.items():
                started = time.perf_counter()
                read()
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()} | {"body": body}


def measure(size: int, args: argparse.Namespace) -> dict[str, Any]:
    bodies = encoded_chunks(size, args.chunk)
    target, floor_target = Target("postgres"), Target("postgres")
    try:
        org_id, key = target.create()
        floor_org, _ = floor_target.create()
        floor = CopyFloor(floor_target.url, floor_org)
        with Server(target.url) as server:
            spent = import_beside_floor(server, key, floor, bodies)
            import_rss = server.rss_kb("VmHWM") / 1024
        floor.conn.close()
        del bodies
        settle(target.url)
        with Server(target.url) as server:
            scans = scans_beside_floor(server, target.url, key, org_id, args.runs)
            scan_rss = server.rss_kb("VmHWM") / 1024
    finally:
        target.drop()
        floor_target.drop()
    checked = scans["body"]["checked_binding_count"]
    assert spent["created"] == size == checked, (spent, checked)
    return {
        "size": size,
        "import": (spent["import"], spent["copy"]),
        "scan": (scans["scan"], scans["floor"]),
        "request": (scans["request"], scans["floor"]),
        "rss": (import_rss, scan_rss),
    }


def combine(size: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeated runs: of each figure, its floor, and the per-run ratio."""
    out: dict[str, Any] = {"size": size}
    for name in ("import", "scan", "request"):
        pairs = [r[name] for r in runs]
        out[name] = tuple(statistics.median(x) for x in zip(*pairs, strict=True))
        out[name] += (statistics.median(value / floor for value, floor in pairs),)
    out["rss"] = tuple(max(x) for x in zip(*(r["rss"] for r in runs), strict=True))
    return out


def table(results: list[dict[str, Any]]) -> None:
    line = "{:>9}  {:<11} {:>10} {:>10} {:>7} {:>8}  {}"
    print(line.format("bindings", "figure", "value", "floor", "ratio", "bar", "result"))
    for r in results:
        (imp, copy_s, imp_x), (scan, read, scan_x) = r["import"], r["scan"]
        request, _, request_x = r["request"]
        imp_rss, scan_rss = r["rss"]
        scan_ms, read_ms = f"{scan * 1e3:.1f}", f"{read * 1e3:.1f}"
        rows = [
            ("import s", f"{imp:.2f}", f"{copy_s:.2f}", imp_x, IMPORT_BAR, f"<={IMPORT_BAR}x"),
            ("scan ms", scan_ms, read_ms, scan_x, SCAN_BAR, f"<={SCAN_BAR}x"),
            ("request ms", f"{request * 1e3:.1f}", read_ms, request_x, None, ""),
            ("rss import", f"{imp_rss:.0f} MB", "", None, RSS_BAR_MB, f"<={RSS_BAR_MB:.0f}MB"),
            ("rss scan", f"{scan_rss:.0f} MB", "", None, RSS_BAR_MB, f"<={RSS_BAR_MB:.0f}MB"),
        ]
        for name, value, floor, ratio, limit, bar in rows:
            figure = ratio if ratio is not None else float(value.split()[0])
            shown = f"{ratio:.2f}x" if ratio is not None else ""
            verdict = "" if limit is None else "ok" if figure <= limit else "MISSED"
            print(line.format(r["size"], name, value, floor, shown, bar, verdict))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="bindings, comma-separated")
    parser.add_argument("--chunk", type=int, default=2000, help="agents per import request")
    parser.add_argument("--runs", type=int, default=5, help="timed scans and floor reads per size")
    parser.add_argument("--repeat", type=int, default=1, help="whole measurements per size")
    args = parser.parse_args()
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        started = time.perf_counter()
        results.append(combine(size, [measure(size, args) for _ in range(args.repeat)]))
        print(f"{size} bindings measured in {time.perf_counter() - started:.0f} s", flush=True)
    table(results)


if __name__ == "__main__":
    main()
