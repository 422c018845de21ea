"""Pieces several benchmarks share: a statement-counting timer and a bootstrapped org."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event

from driftwarden.auth import service as auth_service
from driftwarden.clock import SystemClock
from driftwarden.db.engine import make_session_factory


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
