"""Auth from the headers before any body byte, limits while the body streams, no NaN/Infinity."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from driftwarden.api.guard import has_non_json_constant, has_overflowing_number
from tests.support import make_tenant

CHUNK = 64 * 1024


class Upload:
    """Drives the ASGI app directly with a body of `size` bytes, counting the chunks it pulls."""

    def __init__(
        self, app: Any, path: str, headers: dict[str, str], size: int, declare_length: bool = True
    ) -> None:
        self.app, self.path, self.size = app, path, size
        pairs = {k.lower(): v for k, v in headers.items()} | {"content-type": "application/json"}
        if declare_length:
            pairs["content-length"] = str(size)
        self.headers = [(k.encode(), v.encode()) for k, v in pairs.items()]
        self.pulled = 0
        self.status: int | None = None
        self.response_headers: dict[bytes, bytes] = {}
        self.body = b""

    async def _receive(self) -> dict[str, Any]:
        sent = self.pulled * CHUNK
        self.pulled += 1
        piece = min(CHUNK, self.size - sent)
        return {
            "type": "http.request",
            "body": b" " * max(piece, 0),
            "more_body": sent + piece < self.size,
        }

    async def _send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.response_headers = dict(message.get("headers", []))
        else:
            self.body += message.get("body", b"")

    def run(self) -> Upload:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": b"",
            "headers": self.headers,
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
            "app": self.app,
        }
        asyncio.run(self.app(scope, self._receive, self._send))
        return self

    @property
    def code(self) -> str:
        return json.loads(self.body)["error"]["code"]


def test_unauthenticated_body_is_refused_before_one_byte_is_read(app, client, admin) -> None:
    for headers in ({}, {"Authorization": "Bearer dwk_" + "A" * 40}):
        upload = Upload(app, "/api/v1/contracts/import", headers, 30 * 1024 * 1024).run()
        assert (upload.status, upload.code, upload.pulled) == (401, "UNAUTHORIZED", 0)
        assert upload.response_headers[b"connection"] == b"close"
        assert upload.response_headers[b"www-authenticate"] == b"Bearer"


def test_a_declared_length_over_the_limit_is_413_at_once(app, client, admin) -> None:
    upload = Upload(app, "/api/v1/agents", admin.headers, 2 * 1024 * 1024).run()
    assert (upload.status, upload.code, upload.pulled) == (413, "PAYLOAD_TOO_LARGE", 0)


def test_a_streamed_body_is_cut_off_as_soon_as_it_passes_the_limit(
    app, client, admin, settings
) -> None:
    upload = Upload(
        app, "/api/v1/agents", admin.headers, 8 * 1024 * 1024, declare_length=False
    ).run()
    assert (upload.status, upload.code) == (413, "PAYLOAD_TOO_LARGE")
    assert upload.pulled == math.floor(settings.max_request_bytes / CHUNK) + 1  # not all 128


def test_the_import_allowance_is_for_members_only(app, client, admin, engine) -> None:
    viewer = make_tenant(engine, role="viewer", org_id=admin.org_id)
    member = make_tenant(engine, role="member", org_id=admin.org_id)
    size = 3 * 1024 * 1024  # over MAX_REQUEST_BYTES, under MAX_IMPORT_BYTES
    for tenant, expected in ((viewer, 413), (member, 422), (admin, 422)):
        upload = Upload(app, "/api/v1/contracts/import", tenant.headers, size).run()
        assert upload.status == expected, (tenant.role, upload.body[:200])
    legacy = Upload(app, "/api/contracts/import", member.headers, size).run()
    assert legacy.status == 422  # the blank body is read whole, then refused as JSON
    elsewhere = Upload(app, "/api/v1/agents", member.headers, size).run()
    assert elsewhere.status == 413


def test_nan_and_infinity_are_not_json(client: TestClient, admin) -> None:
    headers = {**admin.headers, "Content-Type": "application/json"}
    for token in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"name": "n", "metadata": {"x": ' + token + b"}}"
        response = client.post("/api/v1/agents", headers=headers, content=body)
        assert response.status_code == 422, token
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    named = client.post(
        "/api/v1/agents",
        headers=headers,
        content=b'{"name": "NaN", "metadata": {"Infinity": "-Infinity"}}',
    )
    assert named.status_code == 201


def _stdlib_saw_constant(body: str) -> bool:
    seen = []
    json.loads(body, parse_constant=seen.append)
    return bool(seen)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=12,
)


@hypothesis_settings(max_examples=150, deadline=None)
@given(JSON_VALUES)
def test_the_constant_check_agrees_with_the_stdlib_parser(value: object) -> None:
    body = json.dumps(value)  # allow_nan=True writes NaN, Infinity and -Infinity as bare tokens
    assert has_non_json_constant(body.encode()) is _stdlib_saw_constant(body)


def _stdlib_read_an_infinity(body: str) -> bool:
    """The oracle: what Python's parser makes of each number."""

    def infinite(value: object) -> bool:
        if isinstance(value, float):
            return math.isinf(value)
        if isinstance(value, list):
            return any(infinite(item) for item in value)
        return False

    return infinite(json.loads(body))


NUMBER_TEXT = st.from_regex(
    r"-?(0|[1-9][0-9]{0,2})(\.[0-9]{1,3})?([eE][+-]?[0-9]{1,3})?", fullmatch=True
)
WIDE_NUMBER_TEXT = st.integers(300, 320).map(lambda digits: "9" * digits + ".5")
STRING_TEXT = st.sampled_from(["1e400", "-9e999", "x"]).map(json.dumps)  # numbers inside strings
JSON_TEXT = st.recursive(
    NUMBER_TEXT | WIDE_NUMBER_TEXT | STRING_TEXT | st.sampled_from(["true", "false", "null"]),
    lambda children: st.lists(children, max_size=4).map(lambda items: f"[{','.join(items)}]"),
    max_leaves=8,
)


@hypothesis_settings(max_examples=150, deadline=None)
@given(JSON_TEXT)
def test_the_overflow_check_agrees_with_the_stdlib_parser(body: str) -> None:
    assert has_overflowing_number(body.encode()) is _stdlib_read_an_infinity(body)


def test_a_number_beyond_a_double_is_refused_not_stored_as_null(client: TestClient) -> None:
    """Python read it as infinity: PostgreSQL refused it (a 500), SQLite's JSON stored null."""
    admin = make_tenant(client.app.state.engine, role="admin")  # type: ignore[attr-defined]
    headers = {**admin.headers, "Content-Type": "application/json"}
    for number in (b"1e400", b"-1.5E+999", b"9" * 400 + b".5"):
        body = b'{"name": "x", "metadata": {"a": ' + number + b"}}"
        response = client.post("/api/v1/agents", headers=headers, content=body)
        assert response.status_code == 422, response.text
        assert "1.8e308" in response.json()["error"]["message"]
    kept = b'{"name": "x", "metadata": {"tiny": 1e-400, "big": 1e300, "text": "1e400"}}'
    created = client.post("/api/v1/agents", headers=headers, content=kept)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["metadata"] == {"tiny": 0.0, "big": 1e300, "text": "1e400"}
