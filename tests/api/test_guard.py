"""The input guard: depth, NUL, unpaired surrogates and size limits at the edge."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from driftwarden.api.app import create_app
from driftwarden.api.guard import has_lone_surrogate, json_depth


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        (b"", 0),
        (b"1", 0),
        (b"{}", 1),
        (b'{"a": [1, {"b": []}]}', 4),
        (b'{"a": "[[[[{{{"}', 1),
        (b'["\\"]]]", [[]]]', 3),
        (b'["a\\\\", [[]], "]]"]', 3),
        (b'[["unterminated [[', 4),  # not a string, so its brackets count
        (b"[" * 50 + b"]" * 50, 50),
    ],
)
def test_json_depth_ignores_brackets_in_strings(body: bytes, depth: int) -> None:
    assert json_depth(body) == depth


def test_deep_nul_and_oversized_bodies_are_refused(
    client: TestClient, admin, settings, engine, clock
) -> None:
    deep = client.post(
        "/api/v1/agents",
        headers=admin.headers,
        json={"name": "x", "metadata": eval("{'a':" * 40 + "1" + "}" * 40)},
    )
    assert deep.status_code == 422 and "nested deeper" in deep.json()["error"]["message"]
    nul = client.post("/api/v1/agents", headers=admin.headers, json={"name": "a\x00b"})
    assert nul.status_code == 422 and nul.json()["error"]["code"] == "VALIDATION_ERROR"
    nul_query = client.get("/api/v1/agents", params={"agent_type": "a\x00"}, headers=admin.headers)
    assert nul_query.status_code == 422
    fine = client.post(
        "/api/v1/agents", headers=admin.headers, json={"name": "ok", "metadata": {"a": {"b": [1]}}}
    )
    assert fine.status_code == 201
    small = create_app(
        settings.model_copy(update={"max_request_bytes": 2048}), engine=engine, clock=clock
    )
    with TestClient(small) as small_client:
        big = small_client.post(
            "/api/v1/agents", headers=admin.headers, json={"name": "x", "description": "y" * 4096}
        )
    assert big.status_code == 413 and big.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert big.headers["x-request-id"]


def _stdlib_found_a_lone_surrogate(body: str) -> bool:
    """The oracle: Python's parser reads each escape, and its UTF-8 encoder refuses a lone half."""
    found: list[str] = []

    def strings(value: object) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            for item in value:
                strings(item)
        elif isinstance(value, dict):
            for key, item in value.items():
                strings(key)
                strings(item)

    strings(json.loads(body))
    try:
        for text in found:
            text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# Characters near and in the surrogate range, an astral one (written as a pair), and the backslash
# and letters that make an escape look-alike.
TRICKY_TEXT = st.text(
    st.sampled_from(["\ud800", "\udc00", "\\", "u", "d", "8", "c", "0", "x", "\U0001f600"])
    | st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010, exclude_categories=()),
    max_size=8,
)
JSON_WITH_TEXT = st.recursive(
    st.none() | st.integers() | TRICKY_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(TRICKY_TEXT, children, max_size=3)
    ),
    max_leaves=8,
)


@hypothesis_settings(max_examples=150, deadline=None)
@given(JSON_WITH_TEXT)
def test_the_surrogate_check_agrees_with_the_stdlib(value: object) -> None:
    body = json.dumps(value)  # ensure_ascii: every non-ASCII character an escape, pairs as pairs
    assert has_lone_surrogate(body.encode()) is _stdlib_found_a_lone_surrogate(body)


@pytest.mark.parametrize(
    ("body", "lone"),
    [
        (rb'{"a": "\ud83d\ude00"}', False),  # an emoji, as its UTF-16 pair
        (rb'{"a": "\\ud800"}', False),  # an escaped backslash, then the text ud800
        (rb'{"a": "\ud800"}', True),
        (rb'{"a": "\udc00"}', True),
        (rb'{"a": "\ude00\ud83d"}', True),  # the halves the wrong way round
        (rb'{"a": "\ud83d x \ude00"}', True),
        (rb'{"a": "\\\ud800"}', True),  # an escaped backslash, then the escape
    ],
)
def test_lone_surrogates_are_told_from_pairs(body: bytes, lone: bool) -> None:
    assert has_lone_surrogate(body) is lone


def test_a_lone_surrogate_is_refused_before_any_route_or_record(client: TestClient, admin) -> None:
    """It reached PostgreSQL (and SQLite's JSON) in free-form fields such as `metadata`: a 500."""
    for body in (
        rb'{"name": "ok", "metadata": {"k": "\udc00"}}',
        rb'{"name": "ok", "metadata": {"k\ud800": 1}}',
    ):
        for key in (None, uuid.uuid4().hex):
            headers = {**admin.headers, "Content-Type": "application/json"}
            if key:
                headers["Idempotency-Key"] = key
            response = client.post("/api/v1/agents", headers=headers, content=body)
            assert response.status_code == 422, response.text
            assert "surrogate" in response.json()["error"]["message"]
    emoji = rb'{"name": "ok", "metadata": {"mood": "\ud83d\ude00"}}'  # the emoji as its pair
    headers = {**admin.headers, "Content-Type": "application/json"}
    created = client.post("/api/v1/agents", headers=headers, content=emoji)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["metadata"] == {"mood": "\U0001f600"}
    listed = client.get("/api/v1/agents", headers=admin.headers).json()["data"]
    assert [agent["metadata"] for agent in listed["items"]] == [{"mood": "\U0001f600"}]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_a_json_body_not_in_utf8_is_refused(client: TestClient, admin, encoding: str) -> None:
    """Python's parser reads UTF-16 and UTF-32 too, past every byte check here (a NUL, a lone
    surrogate, NaN): each reached the database as a 500."""
    headers = {**admin.headers, "Content-Type": "application/json"}
    for text in ('{"name": "x", "metadata": {"a": "\\u0000"}}', '{"name": "plain"}'):
        response = client.post("/api/v1/agents", headers=headers, content=text.encode(encoding))
        assert response.status_code == 422, response.text
        assert "UTF-8" in response.json()["error"]["message"]


def test_a_utf8_body_with_its_byte_order_mark_is_read(client: TestClient, admin) -> None:
    headers = {**admin.headers, "Content-Type": "application/json"}
    body = '{"name": "bom"}'.encode("utf-8-sig")
    response = client.post("/api/v1/agents", headers=headers, content=body)
    assert response.status_code == 201, response.text
