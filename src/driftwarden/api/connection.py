"""The one pooled connection a request with an Idempotency-Key uses, from its key lookup on.

Checked out by the auth gate (one pre-ping) in autocommit, so that the key lookup and the
idempotency claim are one statement each, with no BEGIN or COMMIT round trip; then put back in
the engine's isolation level and bound to the request's session (`unit_of_work.request_session`);
returned to the pool when the unit of work settles, or by `discard` when the route never runs (a
replay, a conflict, an error before the route; the gate discards whatever is left at the end).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func
from sqlalchemy.sql import Executable
from sqlalchemy.sql.selectable import TableValuedAlias
from starlette.types import Scope

from driftwarden.api.context import MUTATING, header

STATE_KEY = "request_connection"
AUTOCOMMIT = "AUTOCOMMIT"


def wanted(scope: Scope) -> bool:
    """Whether the request will claim an Idempotency-Key (and so use one connection throughout)."""
    return scope["method"] in MUTATING and header(scope, b"idempotency-key") is not None


def request_connection(scope: Scope) -> Connection:
    state = scope.setdefault("state", {})
    if STATE_KEY not in state:
        connection = scope["app"].state.engine.connect()
        state[STATE_KEY] = connection.execution_options(isolation_level=AUTOCOMMIT)
    return state[STATE_KEY]


def transactional(connection: Connection) -> Connection:
    """The request connection back in the engine's isolation level, for the request's session."""
    if connection.get_execution_options().get("isolation_level") == AUTOCOMMIT:
        connection.execution_options(isolation_level=connection.default_isolation_level)
    return connection


def discard(state: dict[str, Any]) -> None:
    connection = state.pop(STATE_KEY, None)
    if connection is not None:
        connection.close()


def run_alone(connection: Connection, statement: Executable, params: Any = None) -> Any:
    """One statement committed on its own (in autocommit: no BEGIN or COMMIT round trip); its first
    row. The connection must not be bound to the request's session yet."""
    with connection.begin():
        return connection.execute(statement, params).first()


def asynchronous_commit(dialect_name: str) -> TableValuedAlias | None:
    """A FROM item that makes the commit of the one statement selecting from it asynchronous.

    On Postgres, `set_config('synchronous_commit', 'off', true)` lasts until the end of the
    statement's own transaction (its commit, in autocommit), the effect of `SET LOCAL` without the
    BEGIN, SET and COMMIT round trips. The commit is visible to every other request at once, and
    any later durable commit (the request's own unit of work, a flow's step) flushes it first,
    since the WAL is written in order. A crash can only lose it together with everything the
    request did after it, which a retry then runs. This saves a disk flush per claim; SQLite has
    nothing to set (None).
    """
    if dialect_name != "postgresql":
        return None
    return func.set_config("synchronous_commit", "off", True).table_valued("setting")
