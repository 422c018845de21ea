"""Config schemas and configs: metaschema check, effective config, validation errors. Pure.

A binding's effective config is its definition's `default_config` deep-merged with the
binding's own `config`, validated against the current version's `config_schema`
(docs/reference/drift.md, contract versions and schemas). `jsonschema` does the validating.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from driftwarden.errors import Invalid

MAX_ERRORS = 10


def pointer(parts: Any) -> str:
    """A JSON pointer (RFC 6901) from a jsonschema error's path deque."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def check_schema(schema: Any, *, field: str = "config_schema") -> None:
    """422 CONTRACT_SCHEMA_INVALID unless `schema` is null or a valid Draft 2020-12 schema."""
    if schema is None:
        return
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        path = pointer(exc.path)
        raise Invalid(
            f"{field} is not a valid JSON Schema (Draft 2020-12) at '{path}': {exc.message}",
            code="CONTRACT_SCHEMA_INVALID",
            details=[
                {"loc": ["body", field], "path": path, "msg": exc.message, "type": "json_schema"}
            ],
        ) from exc


def effective_config(default: dict[str, Any] | None, config: dict[str, Any] | None) -> dict:
    """`config` over `default`, objects merged key by key at every depth, anything else replaced."""
    merged = dict(default or {})
    for key, value in (config or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = effective_config(merged[key], value)
        else:
            merged[key] = value
    return merged


@lru_cache(maxsize=4096)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))


def validator_for(schema: Any) -> Draft202012Validator:
    """One compiled validator per distinct schema, reused across bindings and requests."""
    return _validator(json.dumps(schema, sort_keys=True))


def config_errors(schema: Any, config: Any) -> list[dict[str, str]] | None:
    """None without a schema; else at most MAX_ERRORS `{path, message}`, empty when valid."""
    if schema is None:
        return None
    errors: list[ValidationError] = []
    for error in validator_for(schema).iter_errors(config):
        errors.append(error)
        if len(errors) >= MAX_ERRORS:
            break
    errors.sort(key=lambda e: (pointer(e.absolute_path), e.message))
    return [{"path": pointer(e.absolute_path), "message": e.message} for e in errors]
