"""SIGTERM lets in-flight requests finish.

An idempotent request cut off mid-way is safe to retry.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from sqlalchemy import Engine, func, select, text

from driftwarden.agents.models import Agent
from tests.production.serve import ServeProcess, slow
from tests.support import ON_POSTGRES, Tenant, make_tenant, wait_for

pytestmark = slow


@contextmanager
def agents_table_locked(engine: Engine) -> Iterator[None]:
    """Hold writers to `agents` back, so a create request stays in flight inside its transaction."""
    with engine.connect() as conn:
        transaction = conn.begin()
        if ON_POSTGRES:
            conn.execute(text("LOCK TABLE agents IN EXCLUSIVE MODE"))
        else:
            conn.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: SQLite's single writer is now us
        yield
        transaction.commit()


def _waiting_on_lock(engine: Engine) -> bool:
    if not ON_POSTGRES:
        time.sleep(1.0)  # SQLite shows no lock waiters; give the request time to reach the database
        return True
    with engine.connect() as conn:
        return bool(conn.scalar(text("SELECT count(*) FROM pg_locks WHERE NOT granted")))


def _post_in_background(
    url: str, tenant: Tenant, key: str, name: str
) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["response"] = httpx.post(
                f"{url}/api/v1/agents",
                json={"name": name},
                timeout=40,
                headers={**tenant.headers, "Idempotency-Key": key},
            )
        except httpx.TransportError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _count(engine: Engine, name: str) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Agent).where(Agent.name == name)) or 0


def _refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_sigterm_lets_an_in_flight_request_finish(database_url: str, engine: Engine) -> None:
    tenant = make_tenant(engine)
    name, key = f"graceful-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with ServeProcess(database_url, graceful_seconds=20) as server:
        with agents_table_locked(engine):
            thread, outcome = _post_in_background(server.url, tenant, key, name)
            assert wait_for(lambda: _waiting_on_lock(engine), timeout=10)
            server.signal(signal.SIGTERM)
            assert wait_for(lambda: _refuses_connections(server.port), timeout=5), (
                "still accepting after SIGTERM"
            )
            assert server.process is not None and server.process.poll() is None, (
                "exited with a request in flight"
            )
        thread.join(timeout=30)
        # uvicorn re-raises the signal it handled once shutdown is complete,
        # so -SIGTERM is a clean exit.
        assert server.wait(timeout=20) in (0, -signal.SIGTERM), server.output()
    first = outcome["response"]
    assert first.status_code == 201, first.text
    assert _count(engine, name) == 1
    with ServeProcess(database_url) as again:
        replay = httpx.post(
            f"{again.url}/api/v1/agents",
            json={"name": name},
            timeout=10,
            headers={**tenant.headers, "Idempotency-Key": key},
        )
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json() and _count(engine, name) == 1


def test_request_killed_mid_way_is_safe_to_retry_with_its_key(
    database_url: str, engine: Engine
) -> None:
    tenant = make_tenant(engine)
    name, key = f"cutoff-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    lease = {"IDEMPOTENCY_LEASE_SECONDS": "2"}
    with ServeProcess(database_url, env=lease) as server:
        with agents_table_locked(engine):
            thread, outcome = _post_in_background(server.url, tenant, key, name)
            assert wait_for(lambda: _waiting_on_lock(engine), timeout=10)
            server.signal(signal.SIGKILL)
            server.wait(timeout=10)
        thread.join(timeout=10)
    assert "error" in outcome, "the cut-off request should have lost its connection"
    assert _count(engine, name) == 0, "a killed request left a partial write"
    with ServeProcess(database_url, env=lease) as again:
        statuses: list[int] = []

        def retry() -> bool:
            response = httpx.post(
                f"{again.url}/api/v1/agents",
                json={"name": name},
                timeout=10,
                headers={**tenant.headers, "Idempotency-Key": key},
            )
            statuses.append(response.status_code)
            return response.status_code == 201

        assert wait_for(retry, timeout=15, interval=0.5), statuses
        assert set(statuses) <= {201, 409}, (
            statuses
        )  # 409 IDEMPOTENCY_IN_PROGRESS until the lease lapses
        assert retry() and _count(engine, name) == 1
