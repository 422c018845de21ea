"""The one pooled connection a request with an Idempotency-Key uses, from its claim to its commit.

Checked out for the claim (one pre-ping), then bound to the request's session
(`unit_of_work.request_session`), and returned to the pool when the unit of work settles, or by
`discard` when the route never runs (a replay, a conflict, an error before the route).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.sql import Executable
from starlette.types import Scope

STATE_KEY = "request_connection"


def request_connection(scope: Scope) -> Connection:
    state = scope.setdefault("state", {})
    if STATE_KEY not in state:
        state[STATE_KEY] = scope["app"].state.engine.connect()
    return state[STATE_KEY]


def discard(state: dict[str, Any]) -> None:
    connection = state.pop(STATE_KEY, None)
    if connection is not None:
        connection.close()


def run_alone(connection: Connection, statement: Executable) -> Any:
    """One statement in a transaction of its own, its commit not awaiting the disk; its first row.

    On Postgres the commit is asynchronous (`synchronous_commit` off for this transaction only):
    it is visible to every other request at once, and any later durable commit (the request's own
    unit of work, a flow's step) flushes it first, since the WAL is written in order. A crash can
    only lose it together with everything the request did after it, which a retry then runs. This
    saves a disk flush (milliseconds) per claim; SQLite has nothing to set.
    """
    with connection.begin():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
        return connection.execute(statement).first()
