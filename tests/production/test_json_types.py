"""A request body's numbers, booleans and date-times are taken only as the OpenAPI document types
them: `true` is not 1, 1 is not `true`, "5" is not 5, and neither a number nor a date-time
without its offset is an RFC 3339 date-time. Read from the document, so every body field added
later is covered too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from fastapi.testclient import TestClient

from tests.production.openapi_ops import document

# Values pydantic's lax mode would coerce into the documented type (or, for a date-time without
# its offset, take as a naive time).
WRONG_BY_TYPE: dict[str, tuple[Any, ...]] = {
    "integer": (True, "5"),
    "number": (True, "0.5"),
    "boolean": (1, "true"),
    # Unix time as a number or as digits; RFC 3339 without the offset, and a bare date
    "date-time": (1_700_000_000, "1700000000", "2099-01-01T00:00:00", "2099-01-01"),
}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return document()["components"]["schemas"][name]
    return schema


def _options(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The non-null alternatives of a schema (`X | None` is anyOf [X, null])."""
    schema = _resolve(schema)
    options = schema.get("anyOf", [schema])
    return [_resolve(o) for o in options if o.get("type") != "null"]


def _kind(options: list[dict[str, Any]]) -> str | None:
    types = {o.get("format") if o.get("format") == "date-time" else o.get("type") for o in options}
    if len(types) == 1 and (kind := types.pop()) in WRONG_BY_TYPE:
        return kind
    return None


def wrong_bodies(schema: dict[str, Any], depth: int = 0) -> Iterator[tuple[Any, list[Any]]]:
    """(a body with one field of the wrong JSON type, that field's location in it), for every
    scalar field of `schema` and of the objects and arrays of objects it holds."""
    for name, field in (_resolve(schema).get("properties") or {}).items():
        options = _options(field)
        kind = _kind(options)
        if kind is not None:
            for wrong in WRONG_BY_TYPE[kind]:
                yield {name: wrong}, [name]
            continue
        if depth >= 3:
            continue
        for option in options:
            if option.get("type") == "array" and "items" in option:
                for inner, loc in wrong_bodies(option["items"], depth + 1):
                    yield {name: [inner]}, [name, 0, *loc]
            elif option.get("properties"):
                for inner, loc in wrong_bodies(option, depth + 1):
                    yield {name: inner}, [name, *loc]


def _cases() -> Iterator[tuple[str, str, dict[str, Any], list[Any]]]:
    for path, item in sorted(document()["paths"].items()):
        for method, spec in sorted(item.items()):
            content = spec.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                for body, loc in wrong_bodies(content["application/json"]["schema"]):
                    yield method.upper(), path, body, loc


def test_the_document_has_typed_body_fields_to_check() -> None:
    checked = {(method, path) for method, path, _, _ in _cases()}
    assert len(checked) >= 15  # policy, triggers, schedule runs, promotion, endpoints, imports, ...
    nested = [loc for *_, loc in _cases() if len(loc) > 1]
    assert nested, "the import document's definitions and bindings hold typed fields too"


def test_body_fields_of_another_json_type_are_refused(client: TestClient, admin) -> None:
    accepted = []
    for method, path, body, loc in _cases():
        url = path
        while "{" in url:  # any id: the body is validated before the route looks anything up
            start = url.index("{")
            url = url[:start] + str(uuid.uuid4()) + url[url.index("}", start) + 1 :]
        headers = {**admin.headers, "Idempotency-Key": uuid.uuid4().hex}
        response = client.request(method, url, headers=headers, json=body)
        details = response.json().get("error", {}).get("details") or []
        at_field = [d for d in details if d.get("loc") == ["body", *loc]]
        if response.status_code != 422 or not at_field:
            accepted.append(f"{method} {path} {body!r} -> {response.status_code} {details[:2]}")
    assert not accepted, "\n".join(accepted[:30])


def test_the_documented_types_are_still_taken(client: TestClient, admin) -> None:
    """An integer for a number, a date-time string, numbers and booleans as JSON has them."""
    policy = client.post(
        "/api/v1/system/contracts/drift-policy",
        headers=admin.headers,
        json={"enabled": True, "scan_limit": 50, "alert_max_dedupe_hit_rate": 1},
    )
    assert policy.status_code == 200, policy.text
    data = policy.json()["data"]
    assert (data["enabled"], data["scan_limit"], data["alert_max_dedupe_hit_rate"]) == (True, 50, 1)
    key = client.post(
        "/api/v1/system/api-keys",
        headers={**admin.headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"name": "later", "role": "viewer", "expires_at": "2099-01-01T00:00:00Z"},
    )
    assert key.status_code == 201, key.text
    assert key.json()["data"]["expires_at"].startswith("2099-01-01T00:00:00")


def test_a_date_time_without_its_offset_is_a_422_not_a_500(client: TestClient, admin) -> None:
    """It was taken as a naive time, and comparing it with the clock's aware one raised."""
    for expires_at in ("2099-01-01T00:00:00", "2099-01-01"):
        response = client.post(
            "/api/v1/system/api-keys",
            headers={**admin.headers, "Idempotency-Key": uuid.uuid4().hex},
            json={"name": "naive", "role": "viewer", "expires_at": expires_at},
        )
        assert response.status_code == 422, response.text
        (detail,) = response.json()["error"]["details"]
        assert detail["loc"] == ["body", "expires_at"]


def test_a_config_schema_of_1_is_not_the_schema_true(client: TestClient, admin) -> None:
    """`dict | bool` has two types, so the generated cases above leave it out: lax mode read 1 as
    `true`, the schema that takes every config."""
    body = {"definition_type": "gate", "key": "typed", "name": "n", "contract_version": "1.0.0"}
    url = "/api/v1/contracts/definitions"
    refused = client.post(url, headers=admin.headers, json={**body, "config_schema": 1})
    assert refused.status_code == 422, refused.text
    locs = [d["loc"][:2] for d in refused.json()["error"]["details"]]
    assert locs and all(loc == ["body", "config_schema"] for loc in locs)
    taken = client.post(url, headers=admin.headers, json={**body, "config_schema": True})
    assert taken.status_code == 201, taken.text
    assert taken.json()["data"]["config_schema"] is True
