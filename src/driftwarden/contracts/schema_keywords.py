"""Keyword-level rules of the schema diff: types, enums, bounds and annotations, no recursion.

Each rule compares one keyword of an old subschema X with the same keyword of a new one Y and
says whether every instance X accepts still passes Y's keyword. When unsure, it says breaking
(docs/reference/drift.md, contract versions and schemas).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

ANNOTATIONS = {
    "title": "description_changed",
    "description": "description_changed",
    "default": "default_changed",
    "examples": "annotation_changed",
    "$comment": "annotation_changed",
    "deprecated": "annotation_changed",
    "readOnly": "annotation_changed",
    "writeOnly": "annotation_changed",
    "format": "annotation_changed",
}  # format is an annotation in Draft 2020-12
STRUCTURAL = {"$schema", "$id", "$defs", "definitions", "$anchor", "$dynamicAnchor", "$vocabulary"}
LOWER = ("minLength", "minItems", "minProperties")
UPPER = ("maxLength", "maxItems", "maxProperties")
BOUNDS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", *LOWER, *UPPER)
TYPE_OF = {
    "minLength": "string",
    "maxLength": "string",
    "pattern": "string",
    "minItems": "array",
    "maxItems": "array",
    "uniqueItems": "array",
    "minProperties": "object",
    "maxProperties": "object",
    "required": "object",
    "minimum": "number",
    "maximum": "number",
    "exclusiveMinimum": "number",
    "exclusiveMaximum": "number",
    "multipleOf": "number",
}
ALL_TYPES = frozenset({"null", "boolean", "object", "array", "number", "integer", "string"})


@dataclass(frozen=True)
class Change:
    """One difference between two schemas, at a JSON pointer into the new (or, if gone, old) one."""

    path: str
    kind: str
    breaking: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "breaking": self.breaking,
            "detail": self.detail,
        }


def canonical(value: Any) -> str:
    """A JSON value's identity under JSON Schema equality (1 == 1.0, true != 1)."""

    def norm(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        if isinstance(v, list):
            return [norm(x) for x in v]
        return v

    return json.dumps(norm(value), sort_keys=True)


def json_type(value: Any) -> str:
    """The JSON Schema type of a JSON value (integers are also numbers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", dict: "object", list: "array"}[type(value)]


def enum_of(schema: dict) -> list[Any] | None:
    """The values `enum`/`const` allow, or None when the schema has neither."""
    if "const" in schema:
        return [schema["const"]]
    return list(schema["enum"]) if "enum" in schema else None


def types_of(schema: dict) -> frozenset[str]:
    """The instance types a schema can accept, from `type`, else from its enum values."""
    values = enum_of(schema)
    types: frozenset[str] = ALL_TYPES
    if values is not None:
        types = frozenset(json_type(v) for v in values)
    declared = schema.get("type")
    if declared is not None:
        names = {declared} if isinstance(declared, str) else set(declared)
        names |= {"integer"} if "number" in names else set()
        types = types & frozenset(names)
    return types


def applies(keyword: str, x_types: frozenset[str]) -> bool:
    """Whether a type-specific keyword can constrain any instance of these types."""
    wanted = TYPE_OF.get(keyword)
    if wanted is None:
        return True
    return wanted in x_types or (wanted == "number" and "integer" in x_types)


def type_change(x: dict, y: dict, path: str) -> list[Change]:
    """`type`: Y may keep or widen the set X accepts, never narrow it."""
    if "type" not in y and "type" not in x:
        return []
    x_types = types_of(x)
    y_types = types_of({"type": y["type"]}) if "type" in y else ALL_TYPES
    if x_types <= y_types:
        if canonical(x.get("type")) == canonical(y.get("type")):
            return []
        return [
            Change(
                path + "/type",
                "type_changed",
                False,
                f"type {x.get('type')!r} → {y.get('type')!r} accepts at least as much",
            )
        ]
    lost = sorted(x_types - y_types)
    return [
        Change(
            path + "/type",
            "type_changed",
            True,
            f"type {x.get('type')!r} → {y.get('type')!r} no longer accepts {lost}",
        )
    ]


def enum_change(x: dict, y: dict, path: str) -> list[Change]:
    """`enum`/`const`: values may be added, not removed."""
    x_values, y_values = enum_of(x), enum_of(y)
    where = path + ("/const" if "const" in y or "const" in x and "enum" not in y else "/enum")
    if y_values is None:
        if x_values is None:
            return []
        return [Change(where, "enum_value_added", False, "the value list was removed")]
    y_keys = {canonical(v) for v in y_values}
    if x_values is None:
        return [Change(where, "enum_value_removed", True, "a value list was added")]
    x_keys = {canonical(v) for v in x_values}
    changes = [
        Change(where, "enum_value_removed", True, f"value {v} removed")
        for v in sorted(x_keys - y_keys)
    ]
    changes += [
        Change(where, "enum_value_added", False, f"value {v} added")
        for v in sorted(y_keys - x_keys)
    ]
    return changes


def _ge(a: Any, b: Any) -> bool:
    return a is not None and a >= b


def _le(a: Any, b: Any) -> bool:
    return a is not None and a <= b


def _implied(name: str, x: dict, bound: Any) -> bool:
    """Whether X's own bounds already keep every instance within Y's `name: bound`."""
    low, low_x = x.get("minimum"), x.get("exclusiveMinimum")
    high, high_x = x.get("maximum"), x.get("exclusiveMaximum")
    rules = {
        "minimum": lambda: _ge(low, bound) or _ge(low_x, bound),
        "exclusiveMinimum": lambda: (low is not None and low > bound) or _ge(low_x, bound),
        "maximum": lambda: _le(high, bound) or _le(high_x, bound),
        "exclusiveMaximum": lambda: (high is not None and high < bound) or _le(high_x, bound),
    }
    if name in rules:
        return rules[name]()
    return _ge(x.get(name), bound) if name in LOWER else _le(x.get(name), bound)


def _bound_changes(x: dict, y: dict, path: str, x_types: frozenset[str]) -> list[Change]:
    changes = []
    for name in BOUNDS:
        if not applies(name, x_types) or (name not in x and name not in y):
            continue
        where, was = f"{path}/{name}", x.get(name)
        if name not in y:
            changes.append(Change(where, "bounds_loosened", False, f"{name} {was!r} removed"))
        elif not _implied(name, x, y[name]):
            changes.append(Change(where, "bounds_tightened", True, f"{name} {was!r} → {y[name]!r}"))
        elif was != y[name]:
            changes.append(Change(where, "bounds_loosened", False, f"{name} {was!r} → {y[name]!r}"))
    return changes


def bounds_change(x: dict, y: dict, path: str) -> list[Change]:
    """Lower and upper bounds, `multipleOf`, `uniqueItems`, `pattern`."""
    x_types = types_of(x)
    changes = _bound_changes(x, y, path, x_types)
    changes += _multiple_change(x, y, path, x_types)
    for name in ("uniqueItems", "pattern"):
        if not applies(name, x_types) or canonical(x.get(name)) == canonical(y.get(name)):
            continue
        if y.get(name) in (None, False):
            changes.append(Change(f"{path}/{name}", "bounds_loosened", False, f"{name} removed"))
        else:
            kind = "bounds_tightened" if name == "uniqueItems" else "unknown"
            changes.append(
                Change(f"{path}/{name}", kind, True, f"{name} {x.get(name)!r} → {y[name]!r}")
            )
    return changes


def _multiple_change(x: dict, y: dict, path: str, x_types) -> list[Change]:
    if not applies("multipleOf", x_types) or x.get("multipleOf") == y.get("multipleOf"):
        return []
    if "multipleOf" not in y:
        return [Change(path + "/multipleOf", "bounds_loosened", False, "multipleOf removed")]
    new = Fraction(str(y["multipleOf"]))
    old = Fraction(str(x["multipleOf"])) if "multipleOf" in x else None
    implied = old is not None and (old / new).denominator == 1
    detail = f"multipleOf {x.get('multipleOf')!r} → {y['multipleOf']!r}"
    kind = "bounds_loosened" if implied else "bounds_tightened"
    return [Change(path + "/multipleOf", kind, not implied, detail)]


def annotation_changes(x: dict, y: dict, path: str) -> list[Change]:
    """Annotations never change which configs are valid."""
    return [
        Change(f"{path}/{name}", kind, False, f"{name} changed")
        for name, kind in ANNOTATIONS.items()
        if canonical(x.get(name)) != canonical(y.get(name))
    ]
