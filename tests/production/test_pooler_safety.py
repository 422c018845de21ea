"""Safe behind a transaction pooler, and a bounded pool per worker process.

docs/reference/operations.md#configuration
"""

from __future__ import annotations

import re
import threading
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

import driftwarden
from driftwarden.db.engine import make_engine
from driftwarden.settings import Settings
from tests.production.serve import ServeProcess
from tests.support import ON_POSTGRES, make_tenant

SOURCE = Path(driftwarden.__file__).parent
# Statements whose effect outlives the transaction: through a transaction pooler the next
# transaction may run on another server connection, or someone else's transaction on this one.
SESSION_STATE = {
    "session-level advisory lock (use pg_advisory_xact_lock)": (
        r"pg_(try_)?advisory_lock(_shared)?\s*\("
    ),
    "LISTEN/NOTIFY subscription": r"\bLISTEN\s+\w",
    "named prepared statement": r"\bPREPARE\s+\w+\s+(AS|\()",
    "session SET (use SET LOCAL)": (
        r"[\"']\s*SET\s+(SESSION\s+)?(?!LOCAL\b)"
        r"(ROLE|search_path|statement_timeout|TIME ZONE|application_name)\b"
    ),
    "temporary table": r"\bCREATE\s+(GLOBAL\s+|LOCAL\s+)?TEMP(ORARY)?\s+TABLE",
    "cursor WITH HOLD": r"\bWITH\s+HOLD\b",
    "session set_config": r"set_config\s*\([^)]*,\s*false\s*\)",
}


def test_no_session_state_in_the_code() -> None:
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for what, pattern in SESSION_STATE.items():
            for match in re.finditer(pattern, source, re.IGNORECASE):
                line = source.count("\n", 0, match.start()) + 1
                found.append(f"{path.relative_to(SOURCE)}:{line}: {what}")
    assert not found, "\n".join(found)


MARK = "org_id IS NOT NULL AND name <> 'prepared?'"


def _prepared_after(settings: Settings, runs: int) -> int:
    """Statements the server keeps prepared for a connection after `runs` runs of one query."""
    engine = make_engine(settings)
    try:
        with engine.connect() as conn:
            for _ in range(runs):
                conn.execute(text(f"SELECT count(*) FROM agents WHERE {MARK}")).scalar()
            kept = "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE :query"
            return conn.scalar(text(kept), {"query": f"%{MARK}%"})
    finally:
        engine.dispose()


@pytest.mark.integration
@pytest.mark.skipif(not ON_POSTGRES, reason="prepared statements are a Postgres matter")
def test_no_server_side_prepared_statements_are_kept_by_default(settings: Settings) -> None:
    # psycopg's own default would prepare the query after its 5th run.
    default = settings.model_copy(update={"db_prepare_threshold": None})
    assert _prepared_after(default, runs=12) == 0


@pytest.mark.integration
@pytest.mark.skipif(not ON_POSTGRES, reason="prepared statements are a Postgres matter")
def test_db_prepare_threshold_lets_psycopg_prepare_on_a_direct_connection(
    settings: Settings,
) -> None:
    """DB_PREPARE_THRESHOLD is psycopg's prepare_threshold: a query is prepared once it has run
    that many times on the connection (0: on its first run)."""
    assert _prepared_after(Settings(DATABASE_URL=settings.db_url, DB_PREPARE_THRESHOLD=3), 3) == 0
    assert _prepared_after(Settings(DATABASE_URL=settings.db_url, DB_PREPARE_THRESHOLD=3), 4) == 1
    assert _prepared_after(Settings(DATABASE_URL=settings.db_url, DB_PREPARE_THRESHOLD=0), 1) == 1


def _connections(engine: Engine, app_name: str, pooled: bool) -> int:
    """Server connections of the app; behind a pooler, only those serving a transaction now."""
    # A pooler's server connection keeps the last client's application_name, this one's included.
    busy = " AND state <> 'idle' AND pid <> pg_backend_pid()" if pooled else ""
    with engine.connect() as conn:
        return (
            conn.scalar(
                text(f"SELECT count(*) FROM pg_stat_activity WHERE application_name = :n{busy}"),
                {"n": app_name},
            )
            or 0
        )


def _behind_pooler(engine: Engine) -> bool:
    with engine.connect() as conn:
        return conn.scalar(text("SELECT inet_server_port()")) != (engine.url.port or 5432)


@pytest.mark.integration
@pytest.mark.skipif(not ON_POSTGRES, reason="connection limits are a Postgres matter")
@pytest.mark.slow
def test_workers_share_a_bounded_number_of_connections(database_url: str, engine: Engine) -> None:
    workers, pool_size, overflow = 2, 2, 1
    app_name = f"dw_pool_{uuid.uuid4().hex[:8]}"
    url = (
        make_url(database_url)
        .update_query_dict({"application_name": app_name})
        .render_as_string(False)
    )
    tenant, pooled = make_tenant(engine), _behind_pooler(engine)
    env = {
        "DB_POOL_SIZE": str(pool_size),
        "DB_MAX_OVERFLOW": str(overflow),
        "DB_POOL_TIMEOUT_SECONDS": "30",
    }
    peak, statuses, done = [0], [], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _connections(engine, app_name, pooled))

    with ServeProcess(url, workers=workers, env=env) as server, httpx.Client(timeout=40) as client:
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        threads = [
            threading.Thread(
                target=lambda: statuses.extend(
                    client.get(f"{server.url}/api/v1/agents", headers=tenant.headers).status_code
                    for _ in range(6)
                )
            )
            for _ in range(24)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        done.set()
        sampler.join(timeout=5)
    assert statuses == [200] * 144
    assert 0 < peak[0] <= workers * (pool_size + overflow), peak[0]
