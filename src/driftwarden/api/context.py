"""Outermost middleware: request id, version headers, last-resort 500, and the audit row."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftwarden import logs
from driftwarden.api import database_errors
from driftwarden.api.envelope import error_body
from driftwarden.api.models import ApiAuditLog
from driftwarden.db.base import new_id

log = logging.getLogger("driftwarden.api")

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LEGACY_PREFIX = "/api/"
CANONICAL_PREFIX = "/api/v1/"
AUDIT_BODY_BYTES = 65536  # a body read only to find the org it names is at most this large
AUDIT_DRAIN_SECONDS = 2.0
AUDIT_INSERT = ApiAuditLog.__table__.insert()


def _valid_request_id(value: str | None) -> bool:
    return bool(value) and len(value) <= 128 and all(32 <= ord(c) < 127 for c in value)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def named_org(scope: Scope, body: bytes) -> uuid.UUID | None:
    """The org a request names (`org_id` in the query, else in a JSON body), if a valid UUID.

    Only for the audit row of a request that failed before auth finished, so that the org's own
    admin sees it (docs/reference/api.md, audit log); never trusted for anything else.
    """
    named = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("org_id", [None])[0]
    if named is None and body:
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            document = None
        named = document.get("org_id") if isinstance(document, dict) else None
    try:
        return uuid.UUID(named) if isinstance(named, str) else None
    except ValueError:
        return None


class BodyTap:
    """The request body as the app reads it, kept up to AUDIT_BODY_BYTES for `named_org`."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.kept = bytearray()
        self.size = 0
        self.started = self.done = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            self.started, self.size = True, self.size + len(chunk)
            if self.size <= AUDIT_BODY_BYTES:
                self.kept += chunk
            self.done = not message.get("more_body", False)
        return message

    def body(self) -> bytes:
        return bytes(self.kept) if self.done and self.size <= AUDIT_BODY_BYTES else b""

    async def drain(self, scope: Scope) -> None:
        """Read a small body nobody read (the failure came before auth).

        Bounded in size and time.
        """
        length = (header(scope, b"content-length") or "").strip()
        if self.started or not length.isdigit() or int(length) > AUDIT_BODY_BYTES:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(AUDIT_DRAIN_SECONDS):
                while not self.done and (await self.receive())["type"] == "http.request":
                    pass


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = header(scope, b"x-request-id")
        request_id = supplied if _valid_request_id(supplied) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        log_context = logs.begin_request(request_id)
        path: str = scope["path"]
        legacy = path.startswith(LEGACY_PREFIX) and not path.startswith(CANONICAL_PREFIX)
        started = state["started"] = time.perf_counter()
        seen: dict[str, Any] = {"status": None, "body": b""}
        audited = is_audited(scope)
        tap = BodyTap(receive)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                headers += [(b"x-request-id", request_id.encode()), (b"x-api-version", b"v1")]
                if legacy:
                    headers.append((b"deprecation", b"true"))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                if (seen["status"] or 0) >= 400 and len(seen["body"]) < 65536:
                    seen["body"] += message.get("body", b"")
                if audited and not message.get("more_body"):
                    if state.get("api_key_id") is None and state.get("org_id") is None:
                        state["org_id"] = named_org(scope, tap.body())  # auth did not finish
                    await self._audit_around(scope, state, seen, started, send, message)
                    return
            await send(message)

        try:
            await self.app(scope, tap.receive, send_wrapper)
        except Exception as error:
            if audited and state.get("api_key_id") is None:
                await tap.drain(scope)  # e.g. the key lookup failed: the body names the org
            await self._last_resort(error, seen, request_id, state, send_wrapper)
        finally:
            logs.end_request(log_context)

    async def _audit_around(
        self,
        scope: Scope,
        state: dict[str, Any],
        seen: dict[str, Any],
        started: float,
        send: Send,
        last: Message,
    ) -> None:
        """The audit row is written before the last byte leaves, so a client that sees the
        response sees its row; during a database outage the 503 goes out first."""
        if state.get("audit_written"):  # the unit of work committed it with the request's work
            await send(last)
            return
        latency_ms = (time.perf_counter() - started) * 1000
        if state.get("database_outage"):
            await send(last)
            await run_in_threadpool(self._audit, scope, state, seen, latency_ms)
            return
        await run_in_threadpool(self._audit, scope, state, seen, latency_ms)
        await send(last)

    @staticmethod
    async def _last_resort(
        error: Exception, seen: dict[str, Any], request_id: str, state: dict[str, Any], send: Send
    ) -> None:
        """A database outage or overload is 503 with Retry-After; anything else is a bare 500."""
        outage = database_errors.classify(error)
        if outage is not None:
            database_errors.log_outage(outage, error, request_id)
        else:
            log.exception("unhandled error", extra={"request_id": request_id})
        if seen["status"] is not None:
            raise error
        if outage is not None:
            state["database_outage"] = True
            await database_errors.send_outage(send, outage, request_id)
            return
        body = json.dumps(
            error_body("INTERNAL_ERROR", "internal server error", {"request_id": request_id})
        )
        await send(
            {
                "type": "http.response.start",
                "status": 500,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})

    def _audit(
        self, scope: Scope, state: dict[str, Any], seen: dict[str, Any], latency_ms: float
    ) -> None:
        factory = _session_factory(scope)
        if factory is None:
            return
        error_code = None
        if seen["status"] and seen["status"] >= 400:
            try:
                error_code = json.loads(seen["body"])["error"]["code"]
            except (ValueError, KeyError, TypeError):
                error_code = None
        values = audit_values(
            scope, state, status=seen["status"] or 500, error_code=error_code, latency_ms=latency_ms
        )
        try:
            with factory() as session:
                session.execute(AUDIT_INSERT, values)
                session.commit()
        except Exception:  # the response is already out; losing an audit row must be loud
            log.exception("could not write audit row", extra={"request_id": state["request_id"]})


def is_audited(scope: Scope) -> bool:
    """Every mutating /api request gets an audit row (docs/reference/api.md, audit log)."""
    return scope["method"] in MUTATING and scope["path"].startswith("/api")


def audit_values(
    scope: Scope,
    state: dict[str, Any],
    *,
    status: int,
    error_code: str | None,
    latency_ms: float | None = None,
) -> dict[str, Any]:
    """The request's audit row, every column, for AUDIT_INSERT (a Core insert: the ORM's flush of
    one object cost more than the statement); latency so far unless given (the unit of work adds
    it at commit)."""
    if latency_ms is None:
        latency_ms = (time.perf_counter() - state["started"]) * 1000
    return {
        "id": new_id(),
        "request_id": state["request_id"],
        "api_key_id": state.get("api_key_id"),
        "org_id": state.get("org_id"),
        "method": scope["method"],
        "path": scope["path"][:500],
        "status_code": status,
        "error_code": state.get("audit_code") or error_code,
        "latency_ms": round(latency_ms, 3),
        "idempotency_key": state.get("idempotency_key"),
        "idempotent_replayed": bool(state.get("replayed")),
        "created_at": scope["app"].state.clock.now(),
    }


def _session_factory(scope: Scope):  # type: ignore[no-untyped-def]
    app = scope.get("app")
    return getattr(getattr(app, "state", None), "session_factory", None)
