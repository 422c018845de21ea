"""Refuses hostile input at the edge, before idempotency records, routes or the database see it."""

from __future__ import annotations

import json
import re
from itertools import accumulate

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftwarden.api.envelope import error_body

MAX_JSON_DEPTH = 32
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKET_STEP)


def json_depth(body: bytes) -> int:
    """Deepest nesting of arrays/objects, ignoring brackets inside strings; linear, no recursion."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(_BRACKET_STEP[b] for b in brackets), default=0)


def _problem(scope: Scope, body: bytes) -> tuple[int, str, str] | None:
    if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
        return 422, "VALIDATION_ERROR", "NUL characters are not allowed in the path or query"
    if not body:
        return None
    if b"\\u0000" in body:
        return 422, "VALIDATION_ERROR", "NUL characters (\\u0000) are not allowed in JSON strings"
    if json_depth(body) > MAX_JSON_DEPTH:
        return 422, "VALIDATION_ERROR", f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    return None


class InputGuardMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = scope["method"] in {"POST", "PUT", "PATCH", "DELETE"}
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _refuse(send, 413, "PAYLOAD_TOO_LARGE", f"request body exceeds {self.max_body_bytes} bytes")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = _problem(scope, body)
        if problem is not None:
            await _refuse(send, *problem)
            return
        await self.app(scope, replay_body(body, receive), send)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A receive() that hands the already-read body to the app once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
