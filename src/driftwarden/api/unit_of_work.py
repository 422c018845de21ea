"""One transaction per request, committed with its stored response (docs/reference/api.md).

A route adds and flushes through its request session and returns; this middleware holds the
rendered response, marks the request's idempotency record `completed` with that response in the
same transaction as the route's writes, commits, and only then lets the response out. Either
both the work and its stored response are committed or neither is, so a retry after any failure
replays or runs once, never twice. An error response (4xx raised as a domain error) rolls back.
Flows that commit between steps (trigger, notify, test send) keep their own earlier commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftwarden.api import connection as request_connection
from driftwarden.api import context, idempotency, idempotency_records

STATE_KEY = "unit_of_work"
ROWS_KEY = "rows_with_completion"
RESPONSE_MESSAGES = frozenset({"http.response.start", "http.response.body"})


def request_session(scope: Scope) -> Session:
    """The request's session, opened on first use; the middleware commits or rolls it back."""
    state = scope.setdefault("state", {})
    if STATE_KEY not in state:
        connection = state.get(request_connection.STATE_KEY)
        factory = scope["app"].state.session_factory
        if connection is not None:
            session = factory(bind=request_connection.transactional(connection))
        else:
            session = factory()
        session.info[STATE_KEY] = True
        state[STATE_KEY] = session
    return state[STATE_KEY]


def insert_with_completion(scope: Scope, table: Table, row: dict[str, Any]) -> None:
    """Insert `row` in the request's transaction when it commits, with the idempotency record's
    completion (on Postgres in its statement: one round trip fewer). For a row nothing in the
    request reads back."""
    request_session(scope)  # the unit of work settles only a request that opened its session
    scope["state"].setdefault(ROWS_KEY, []).append((table, row))


def _response(held: list[Message]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    start = held[0]
    body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
    return start["status"], list(start.get("headers", [])), body


def _settle(scope: Scope, held: list[Message] | None) -> list[Message] | None:
    """Commit (with the idempotency record) or roll back; a replacement response, if any."""
    state = scope["state"]
    session: Session | None = state.pop(STATE_KEY, None)
    try:
        return _end(scope, session, held) if session is not None else None
    finally:
        request_connection.discard(state)


def _end(scope: Scope, session: Session, held: list[Message] | None) -> list[Message] | None:
    state = scope["state"]
    rows = state.pop(ROWS_KEY, [])
    with session:
        if held is None or held[0]["status"] >= 400:
            session.rollback()
            return None
        status, headers, body = _response(held)
        claim = state.get("idempotency_claim")
        audited = "started" in state and context.is_audited(scope)
        # the audit row rides in this transaction (with the record's completion): no second one
        audit = None
        if audited:
            audit = context.audit_values(scope, state, status=status, error_code=None)
        if claim is not None:
            if not idempotency_records.complete_record(
                session, state, claim, status, headers, body, audit=audit, rows=rows
            ):
                session.rollback()  # another request took the key over: its run is the one kept
                return idempotency.messages(idempotency.IN_PROGRESS)
        else:
            for table, row in rows:
                session.execute(idempotency_records.insert_into(table), row)
            if audit is not None:
                session.execute(context.AUDIT_INSERT, audit)
        session.commit()
        state["idempotency_completed"] = claim is not None
        state["audit_written"] = audited
    return None


class UnitOfWorkMiddleware:
    """Innermost: holds a response until its request's transaction has committed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        held: list[Message] = []
        passthrough = False

        async def hold(message: Message) -> None:
            nonlocal passthrough
            if message["type"] == "http.response.start" and STATE_KEY not in state:
                passthrough = True  # no session was used: nothing to commit
            if (
                passthrough or message["type"] not in RESPONSE_MESSAGES
            ):  # e.g. a test client's debug
                await send(message)
            else:
                held.append(message)

        try:
            await self.app(scope, receive, hold)
        except BaseException:
            await run_in_threadpool(_settle, scope, None)
            raise
        replacement = await run_in_threadpool(_settle, scope, held or None)
        for message in replacement or held:
            await send(message)
