"""Idempotency-Key handling (IETF draft), stored in the database so it holds across hosts.

Any mutating request that carries the header is claimed here before the route runs; routes
that must have a key declare `IdempotencyKeyRequired`.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import Depends, Header, Request
from starlette.concurrency import run_in_threadpool
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftwarden.api import connection as request_connection
from driftwarden.api import idempotency_records as records
from driftwarden.api.context import MUTATING, header
from driftwarden.api.envelope import error_body
from driftwarden.api.guard import replay_body
from driftwarden.api.idempotency_records import Claim, Response
from driftwarden.auth import keys
from driftwarden.errors import BadRequest


def valid_key(value: str) -> bool:
    return 1 <= len(value) <= 255 and all(32 <= ord(c) < 127 for c in value)


async def require_idempotency_key(idempotency_key: Annotated[str | None, Header()] = None) -> str:
    """`async`, as in api/deps.py: FastAPI runs a plain `def` dependency in the thread pool."""
    if idempotency_key is None:
        raise BadRequest(
            "this endpoint requires an Idempotency-Key header", code="IDEMPOTENCY_KEY_REQUIRED"
        )
    return idempotency_key


IdempotencyKeyRequired = Annotated[str, Depends(require_idempotency_key)]


def withhold_secret_on_replay(request: Request) -> None:
    """For a route whose response carries a one-time secret: its idempotency record has no body."""
    request.state.idempotency_withhold = True


def request_fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """Canonical hash of what makes two requests 'the same payload'."""
    try:
        canonical_body = (
            json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
            if body
            else b""
        )
    except (ValueError, RecursionError):
        canonical_body = body
    canonical_query = "&".join(
        f"{k}={v}" for k, v in sorted(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
    )
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), canonical_query.encode(), canonical_body):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def _error(status: int, code: str, message: str) -> Response:
    body = json.dumps(error_body(code, message)).encode()
    return status, [(b"content-type", b"application/json")], body


RUNNING = "a request with this Idempotency-Key is still in progress"


def in_progress(lease_left: timedelta, message: str = RUNNING) -> Response:
    """409 with `Retry-After`: the whole seconds left on the running request's lease, at least 1."""
    status, headers, body = _error(409, "IDEMPOTENCY_IN_PROGRESS", message)
    seconds = max(1, math.ceil(lease_left.total_seconds()))
    return status, [*headers, (b"retry-after", str(seconds).encode())], body


# A run that lost its key to a takeover does not know the new lease: the caller asks again soon.
IN_PROGRESS = in_progress(timedelta(0))


def messages(response: Response, *, replayed: bool = False) -> list[Message]:
    status, headers, body = response
    headers = list(headers) + ([(b"idempotent-replayed", b"true")] if replayed else [])
    return [
        {"type": "http.response.start", "status": status, "headers": headers},
        {"type": "http.response.body", "body": body},
    ]


ROUTED_CACHE = 4096  # distinct (method, path) pairs remembered; forgotten all at once when full


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routed: dict[tuple[str, str, str], bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] not in MUTATING or not self.routed(scope):
            await self.app(scope, receive, send)
            return
        if not valid_key(key):
            await _send(
                send,
                _error(
                    400,
                    "IDEMPOTENCY_KEY_INVALID",
                    "Idempotency-Key must be 1-255 printable characters",
                ),
            )
            return
        owner = scope.get("state", {}).get("authenticated_key")  # found by the auth gate
        if owner is None:
            owner = await run_in_threadpool(_key_owner, scope)
        if owner is None:  # unauthenticated: let the route answer 401, store nothing
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        state = scope.setdefault("state", {})
        # get_caller reuses this instead of looking the key up a second time.
        state.update(idempotency_key=key, api_key_id=owner.api_key_id, authenticated_key=owner)
        if owner.org_id is not None:
            state["org_id"] = owner.org_id
        fingerprint = request_fingerprint(
            scope["method"], scope["path"], scope.get("query_string", b""), body
        )
        try:
            claim = await run_in_threadpool(_claim, scope, owner.api_key_id, key, fingerprint)
        except BaseException:
            await run_in_threadpool(request_connection.discard, state)
            raise
        if claim.response is not None:
            await run_in_threadpool(request_connection.discard, state)
            state["replayed"] = claim.replayed
            await _send(send, claim.response, replayed=claim.replayed)
            return
        state["idempotency_claim"] = claim  # the unit of work completes it with the route's writes
        await self._run(scope, replay_body(body, receive), send, claim)

    def routed(self, scope: Scope) -> bool:
        """`_routed`, remembered per method and path: matching walks every route."""
        found = (scope["method"], scope.get("root_path", ""), scope["path"])
        if found not in self._routed:
            if len(self._routed) >= ROUTED_CACHE:
                self._routed.clear()
            self._routed[found] = _routed(scope)
        return self._routed[found]

    async def _run(self, scope: Scope, receive: Receive, send: Send, claim: Claim) -> None:
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b"", "stored": False}

        async def store() -> None:
            """Settle the record once, unless the unit of work did it with the route's writes."""
            if not captured["stored"] and not scope["state"].get("idempotency_completed"):
                captured["stored"] = True
                await run_in_threadpool(_finish, scope, claim, captured)

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
                if not message.get("more_body"):
                    await store()  # before the client has the answer: a retry then replays it
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            if not captured["stored"]:
                await run_in_threadpool(_release, scope, claim.record_id)
            raise
        await store()


def _routed(scope: Scope) -> bool:
    """Whether a route takes this method at this path; if not, the app answers 404/405 itself."""
    return any(route.matches(scope)[0] is Match.FULL for route in scope["app"].router.routes)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _send(send: Send, response: Response, *, replayed: bool = False) -> None:
    for message in messages(response, replayed=replayed):
        await send(message)


def _state(scope: Scope) -> Any:
    return scope["app"].state


def _key_owner(scope: Scope) -> keys.KeyIdentity | None:
    """The calling API key when the auth gate did not look it up, or None (unauthenticated)."""
    token = keys.bearer_token(header(scope, b"authorization"))
    if token is None:
        return None
    app_state = _state(scope)
    with app_state.session_factory() as session:
        key = keys.find_active_key(session, token=token, now=app_state.clock.now())
        return keys.KeyIdentity.of(key) if key else None


def _claim(scope: Scope, api_key_id: uuid.UUID, key: str, fingerprint: str) -> Claim:
    """Claim the key in one statement on the request's connection; read the record only if taken."""
    app_state = _state(scope)
    now = app_state.clock.now()
    settings = app_state.settings
    lease = now + timedelta(seconds=settings.idempotency_lease_seconds)
    record = {
        "id": uuid.uuid4(),
        "api_key_id": api_key_id,
        "method": scope["method"],
        "path": scope["path"][:500],
        "idempotency_key": key,
        "request_hash": fingerprint,
        "state": "in_progress",
        "created_at": now,
        "locked_until": lease,
        "expires_at": now + timedelta(hours=settings.idempotency_ttl_hours),
    }
    connection = request_connection.request_connection(scope)
    claim = records.claim_statement(connection.dialect.name)
    bound = {f"claim_{c}": value for c, value in record.items()}
    for _ in range(3):
        claimed = request_connection.run_alone(connection, claim, bound)
        if claimed is not None:
            return Claim(record_id=claimed.id, locked_until=lease)
        existing = request_connection.run_alone(connection, records.EXISTING_RECORD, record)
        if existing is not None:
            return _answer(existing, fingerprint, now)
    return Claim(response=in_progress(timedelta(0), "could not claim the Idempotency-Key; retry"))


def _answer(existing: Any, fingerprint: str, now: datetime) -> Claim:
    """Replay a finished request, or refuse a different or running one."""
    if existing.request_hash != fingerprint:
        return Claim(
            response=_error(
                422,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used with a different request",
            )
        )
    if existing.state == "completed":
        headers = [(k.encode(), v.encode()) for k, v in (existing.response_headers or {}).items()]
        return Claim(
            response=(existing.response_status or 200, headers, existing.response_body or b""),
            replayed=True,
        )
    return Claim(response=in_progress(existing.locked_until - now))


def _finish(scope: Scope, claim: Claim, captured: dict[str, Any]) -> None:
    """A response the route's unit of work did not store (an error, or no session was used)."""
    if captured["status"] >= 500:  # never stored: the client may retry with the same key
        _release(scope, claim.record_id)
        return
    with _state(scope).session_factory() as session:
        records.complete_record(
            session,
            scope.get("state", {}),
            claim,
            captured["status"],
            captured["headers"],
            captured["body"],
        )
        session.commit()


def _release(scope: Scope, record_id: uuid.UUID | None) -> None:
    records.release(_state(scope).session_factory, record_id)
