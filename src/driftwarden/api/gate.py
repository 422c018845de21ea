"""The API key is checked from the headers before any body byte is read (docs/reference/api.md).

An unauthenticated 30 MB upload costs one indexed lookup and a 401, not a read and a parse; the
identity found here is reused by the caller dependency and the idempotency middleware, and it
decides how large a body the request may send.
"""

from __future__ import annotations

import json

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from driftwarden.api import connection as request_connection
from driftwarden.api.context import header
from driftwarden.api.envelope import error_body
from driftwarden.auth import keys
from driftwarden.settings import Settings

API_PREFIX = "/api"
IMPORT_PATHS = frozenset({"/api/v1/contracts/import", "/api/contracts/import"})
UNAUTHORIZED_MESSAGE = "a valid API key is required (Authorization: Bearer <key>)"


def guarded(path: str) -> bool:
    """Every route under /api needs a key; the probes, docs and OpenAPI live outside it."""
    return path == API_PREFIX or path.startswith(API_PREFIX + "/")


def body_limit(scope: Scope, identity: keys.KeyIdentity, settings: Settings) -> int:
    """The import endpoint takes MAX_IMPORT_BYTES from a member or above; all else the default."""
    if (
        scope["method"] == "POST"
        and scope["path"] in IMPORT_PATHS
        and keys.ROLE_RANK[identity.role] >= keys.ROLE_RANK["member"]
    ):
        return settings.max_import_bytes
    return settings.max_request_bytes


def has_body(scope: Scope) -> bool:
    length = header(scope, b"content-length")
    return header(scope, b"transfer-encoding") is not None or (length or "0").strip() != "0"


async def refuse(
    scope: Scope,
    send: Send,
    status: int,
    code: str,
    message: str,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """An error envelope sent before the body is read; the connection closes so it is never read."""
    body = json.dumps(error_body(code, message)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    if has_body(scope):
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _lookup(scope: Scope, token: str) -> keys.KeyIdentity | None:
    """One indexed statement in autocommit (no BEGIN or ROLLBACK round trip): on the connection
    an idempotent request keeps for its claim and its transaction, else on one of its own, handed
    back before the route's begins."""
    app_state = scope["app"].state
    now = app_state.clock.now()
    if request_connection.wanted(scope):
        connection = request_connection.request_connection(scope)
        with connection.begin():
            return keys.identify(connection, token=token, now=now)
    with app_state.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return keys.identify(conn, token=token, now=now)


class AuthGateMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not guarded(scope["path"]):
            await self.app(scope, receive, send)
            return
        try:
            await self._guard(scope, receive, send)
        finally:
            if request_connection.STATE_KEY in scope.get("state", {}):  # no unit of work settled it
                await run_in_threadpool(request_connection.discard, scope["state"])

    async def _guard(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = keys.bearer_token(header(scope, b"authorization"))
        identity = await run_in_threadpool(_lookup, scope, token) if token else None
        if identity is None:
            await refuse(
                scope,
                send,
                401,
                "UNAUTHORIZED",
                UNAUTHORIZED_MESSAGE,
                ((b"www-authenticate", b"Bearer"),),
            )
            return
        state = scope.setdefault("state", {})
        state.update(
            authenticated_key=identity,
            api_key_id=identity.api_key_id,
            max_body_bytes=body_limit(scope, identity, scope["app"].state.settings),
        )
        if identity.org_id is not None:
            state["org_id"] = identity.org_id
        await self.app(scope, receive, send)
