"""Refuses hostile input at the edge, before idempotency records, routes or the database see it."""

from __future__ import annotations

import math
import re
from itertools import accumulate

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from driftwarden.api.context import MUTATING, header
from driftwarden.api.gate import refuse

MAX_JSON_DEPTH = 32
FORM = "application/x-www-form-urlencoded"
# A JSON string, as the unrolled loop "normal* (special normal*)*": one alternation per escape,
# not per character, which halves the guard's time on a multi-megabyte import body.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKET_STEP)
# Outside strings, JSON (RFC 8259) has no letters but true, false, null and exponents.
_NON_JSON_CONSTANT = re.compile(rb"NaN|Infinity")
# The only numbers that can be too large for a double: with an exponent, or with a fraction after
# more than 308 digits (an integer without either is read as an int, of any size).
_MAYBE_HUGE_NUMBER = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?[eE][+-]?[0-9]+|-?[0-9]{309,}\.[0-9]+")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_WIDE_RUN = b"0" * 309


def _without_strings(body: bytes) -> bytes:
    return _JSON_STRING.sub(b"", body)


def _depth(outside_strings: bytes) -> int:
    brackets = outside_strings.translate(None, _NOT_BRACKETS)
    return max(accumulate(_BRACKET_STEP[b] for b in brackets), default=0)


def json_depth(body: bytes) -> int:
    """Deepest nesting of arrays/objects, ignoring brackets inside strings; linear, no recursion."""
    return _depth(_without_strings(body))


def has_non_json_constant(body: bytes) -> bool:
    """NaN, Infinity or -Infinity as a value: Python's json accepts them, Postgres refuses them."""
    return _NON_JSON_CONSTANT.search(_without_strings(body)) is not None


# An escape of U+D800-U+DFFF (not after an escaped backslash): half of a UTF-16 pair.
_SURROGATE_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u[dD]([89a-fA-F])[0-9a-fA-F]{2}")
_HIGH = frozenset(b"89abAB")


def has_lone_surrogate(body: bytes) -> bool:
    """An escape of U+D800-U+DBFF not followed at once by one of U+DC00-U+DFFF, or a low one
    without its high: JSON can spell it, but it is no character, and UTF-8 (so PostgreSQL, and
    SQLite's JSON) cannot store it."""
    pair_ends_at = None  # where the low half of the last high escape must start
    for match in _SURROGATE_ESCAPE.finditer(body):
        escape_at = match.end() - 6
        if match.group(1)[0] in _HIGH:
            if pair_ends_at is not None:
                return True
            pair_ends_at = match.end()
        elif pair_ends_at != escape_at:
            return True
        else:
            pair_ends_at = None
    return pair_ends_at is not None


def has_overflowing_number(body: bytes) -> bool:
    """A number beyond a double's range (1e400): Python reads it as infinity, which PostgreSQL
    refuses and SQLite's JSON stores as null."""
    return _overflows(_without_strings(body))


def _overflows(outside_strings: bytes) -> bool:
    """Counted first (a multi-megabyte import seldom has a candidate): outside strings, every `e`
    but those of `true` and `false` is an exponent's."""
    text = outside_strings
    exponents = text.count(b"e") + text.count(b"E") - text.count(b"true") - text.count(b"false")
    if exponents <= 0 and _WIDE_RUN not in text.translate(_DIGITS_AS_ZERO):
        return False
    return any(math.isinf(float(n)) for n in _MAYBE_HUGE_NUMBER.findall(text))


def _content_type(scope: Scope) -> str:
    return (header(scope, b"content-type") or "").split(";")[0].strip().lower()


def _parsed_as_json(content_type: str) -> bool:
    """FastAPI parses a body as JSON when it names no content type or a JSON one."""
    return not content_type or content_type.endswith(("/json", "+json"))


def _problem(scope: Scope, body: bytes) -> tuple[int, str, str] | None:
    if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
        return 422, "VALIDATION_ERROR", "NUL characters are not allowed in the path or query"
    if not body:
        return None
    content_type = _content_type(scope)
    as_json = _parsed_as_json(content_type)
    if as_json:
        if b"\x00" in body:  # never in UTF-8 JSON; in every UTF-16 or UTF-32 one
            return 422, "VALIDATION_ERROR", "JSON bodies must be UTF-8 (RFC 8259)"
    elif b"\x00" in body or (content_type == FORM and b"%00" in body):
        return 422, "VALIDATION_ERROR", "NUL characters are not allowed in a form"  # the console's
    problem = json_problem(body, as_json=as_json)
    return None if problem is None else (422, "VALIDATION_ERROR", problem)


def json_problem(text: bytes, *, as_json: bool = True) -> str | None:
    """Why a JSON text that parses may still not be taken: what the database cannot store, or
    nesting past the limit. None when there is nothing. `as_json=False`: a body parsed otherwise,
    for which only the string and depth checks mean anything. `driftwarden import` asks it too."""
    if b"\\u0000" in text:
        return "NUL characters (\\u0000) are not allowed in JSON strings"
    if b"\\u" in text and has_lone_surrogate(text):
        return "unpaired UTF-16 surrogates (\\uD800-\\uDFFF) are not text"
    outside_strings = _without_strings(text)
    if _depth(outside_strings) > MAX_JSON_DEPTH:
        return f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    if as_json and _NON_JSON_CONSTANT.search(outside_strings):
        return "NaN, Infinity and -Infinity are not JSON (RFC 8259)"
    if as_json and _overflows(outside_strings):
        return "a number beyond ±1.8e308 cannot be stored"
    return None


def _declared_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    return int(value) if value and value.strip().isdigit() else None


class InputGuardMiddleware:
    """Reads the body while counting it: 413 as soon as the request's limit is passed."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The auth gate sets the limit for authenticated /api requests (the import allowance).
        limit = scope.get("state", {}).get("max_body_bytes", self.max_body_bytes)
        too_large = f"request body exceeds {limit} bytes"
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await refuse(scope, send, 413, "PAYLOAD_TOO_LARGE", too_large)
            return
        body = await _read_limited(receive, limit) if scope["method"] in MUTATING else b""
        if body is None:
            await refuse(scope, send, 413, "PAYLOAD_TOO_LARGE", too_large)
            return
        problem = _problem(scope, body)
        if problem is not None:
            await refuse(scope, send, *problem)
            return
        await self.app(scope, replay_body(body, receive), send)


async def _read_limited(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None the moment it passes `limit` (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


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
