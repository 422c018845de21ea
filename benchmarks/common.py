"""Pieces several benchmarks share: a statement-counting timer, a bootstrapped org, a free
local port and a private PgBouncer."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from driftwarden.auth import service as auth_service
from driftwarden.clock import SystemClock
from driftwarden.db.engine import make_session_factory

ROOT = Path(__file__).resolve().parent.parent


def timed(engine: Engine, work: Callable[[], Any]) -> tuple[float, int, Any]:
    """Seconds, statements issued, result."""
    statements: list[str] = []
    listener = lambda _conn, _cursor, statement, *_: statements.append(statement)  # noqa: E731 - a one-line event listener
    event.listen(engine, "before_cursor_execute", listener)
    try:
        started = time.perf_counter()
        result = work()
        return time.perf_counter() - started, len(statements), result
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def org_with_admin_key(engine: Engine, *, name: str) -> tuple[str, str]:
    """A new org and an org-scoped admin key on a migrated database: (org id, plaintext key)."""
    now = SystemClock().now()
    with make_session_factory(engine)() as session:
        org = auth_service.create_org(session, name=name, slug=None, now=now)
        _, key = auth_service.create_api_key(
            session,
            name=f"{name} admin",
            org_id=org.id,
            role="admin",
            expires_at=None,
            created_by=None,
            now=now,
        )
        session.commit()
        return str(org.id), key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgBouncer:
    """scripts/ci/pgbouncer.sh (transaction mode) on a free port, in a private state directory."""

    def __init__(self) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "PGBOUNCER_PORT": str(self.port),
            "PGBOUNCER_DIR": tempfile.mkdtemp(prefix="dw-bench-pgbouncer-"),
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
