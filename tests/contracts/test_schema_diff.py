"""The schema diff judged against reality: drawn configs if non-breaking, witnesses if breaking.

Configs valid under X are drawn by hypothesis-jsonschema and re-checked with jsonschema's own
Draft 2020-12 validator; a pair the diff calls non-breaking must accept every one under Y. A pair it
calls breaking carries a hand-written witness that jsonschema accepts under X and refuses under Y.
`SCHEMA_DIFF_EXAMPLES` raises the number of drawn configs per pair (default 8).
"""

from __future__ import annotations

import os
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from jsonschema import Draft202012Validator

from driftwarden.contracts.schema_diff import diff, observed

EXAMPLES = int(os.environ.get("SCHEMA_DIFF_EXAMPLES", "8"))
OBJ = {"type": "object"}
DEFS_NUM = {"$defs": {"n": {"type": "number", "minimum": 0}}}


def obj(props: dict, **extra) -> dict:
    return {"type": "object", "properties": props, **extra}


# (name, X, Y, a kind the diff must report) — X→Y keeps every config valid.
NON_BREAKING = [
    (
        "required_removed",
        obj({"a": {"type": "string"}}, required=["a"]),
        obj({"a": {"type": "string"}}),
        "required_removed",
    ),
    (
        "property_added_closed",
        obj({"a": {"type": "integer"}}, additionalProperties=False),
        obj({"a": {"type": "integer"}, "b": {"type": "string"}}, additionalProperties=False),
        "property_added",
    ),
    (
        "property_removed_open",
        obj({"a": {"type": "integer"}, "b": {"type": "string"}}),
        obj({"a": {"type": "integer"}}),
        "property_removed",
    ),
    (
        "type_widened",
        obj({"a": {"type": "integer"}}),
        obj({"a": {"type": ["number", "null"]}}),
        "type_changed",
    ),
    (
        "enum_value_added",
        obj({"m": {"enum": ["a", "b"]}}),
        obj({"m": {"enum": ["a", "b", "c"]}}),
        "enum_value_added",
    ),
    (
        "const_to_enum",
        obj({"m": {"const": "a"}}),
        obj({"m": {"enum": ["a", "z"]}}),
        "enum_value_added",
    ),
    (
        "additional_opened",
        obj({"a": {"type": "integer"}}, additionalProperties=False),
        obj({"a": {"type": "integer"}}),
        "bounds_loosened",
    ),
    (
        "minimum_loosened",
        obj({"n": {"type": "integer", "minimum": 5}}),
        obj({"n": {"type": "integer", "minimum": 1}}),
        "bounds_loosened",
    ),
    (
        "maximum_loosened",
        obj({"n": {"type": "number", "maximum": 5}}),
        obj({"n": {"type": "number", "maximum": 9}}),
        "bounds_loosened",
    ),
    (
        "exclusive_to_inclusive",
        obj({"n": {"type": "number", "exclusiveMinimum": 0}}),
        obj({"n": {"type": "number", "minimum": 0}}),
        "bounds_loosened",
    ),
    (
        "exclusive_max_loosened",
        obj({"n": {"type": "number", "exclusiveMaximum": 3}}),
        obj({"n": {"type": "number", "exclusiveMaximum": 4}}),
        "bounds_loosened",
    ),
    (
        "length_loosened",
        obj({"s": {"type": "string", "minLength": 3, "maxLength": 5}}),
        obj({"s": {"type": "string", "minLength": 1, "maxLength": 8}}),
        "bounds_loosened",
    ),
    (
        "items_loosened",
        obj({"l": {"type": "array", "minItems": 2, "maxItems": 3}}),
        obj({"l": {"type": "array", "minItems": 1}}),
        "bounds_loosened",
    ),
    (
        "props_count_loosened",
        {"type": "object", "maxProperties": 2},
        {"type": "object", "maxProperties": 4},
        "bounds_loosened",
    ),
    (
        "multiple_loosened",
        obj({"n": {"type": "integer", "multipleOf": 6}}),
        obj({"n": {"type": "integer", "multipleOf": 3}}),
        "bounds_loosened",
    ),
    (
        "unique_dropped",
        obj({"l": {"type": "array", "uniqueItems": True}}),
        obj({"l": {"type": "array"}}),
        "bounds_loosened",
    ),
    (
        "pattern_dropped",
        obj({"s": {"type": "string", "pattern": "^a"}}),
        obj({"s": {"type": "string"}}),
        "bounds_loosened",
    ),
    (
        "default_changed",
        obj({"a": {"type": "integer", "default": 1}}),
        obj({"a": {"type": "integer", "default": 2}}),
        "default_changed",
    ),
    (
        "description_changed",
        obj({"a": {"type": "integer", "description": "old"}}),
        obj({"a": {"type": "integer", "description": "new"}}, title="T"),
        "description_changed",
    ),
    (
        "nested_loosened",
        obj({"o": obj({"p": {"type": "integer", "maximum": 3}}, required=["p"])}),
        obj({"o": obj({"p": {"type": "integer", "maximum": 7}})}),
        "required_removed",
    ),
    (
        "array_items_widened",
        obj({"l": {"type": "array", "items": {"type": "integer"}}}),
        obj({"l": {"type": "array", "items": {"type": "number"}}}),
        "type_changed",
    ),
    (
        "ref_target_loosened",
        {**DEFS_NUM, **obj({"a": {"$ref": "#/$defs/n"}})},
        {"$defs": {"n": {"type": "number"}}, **obj({"a": {"$ref": "#/$defs/n"}})},
        "bounds_loosened",
    ),
    (
        "ref_inlined",
        {**DEFS_NUM, **obj({"a": {"$ref": "#/$defs/n"}})},
        obj({"a": {"type": "number"}}),
        "bounds_loosened",
    ),
    (
        "anyof_widened",
        obj({"v": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}),
        obj({"v": {"anyOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]}}),
        "variant_added",
    ),
    (
        "anyof_added_covering",
        obj({"v": {"type": "integer"}}),
        obj({"v": {"anyOf": [{"type": "string"}, {"type": "number"}]}}),
        "variant_added",
    ),
    (
        "oneof_annotation",
        obj({"v": {"oneOf": [{"type": "integer"}, {"type": "string"}]}}),
        obj({"v": {"oneOf": [{"type": "integer", "title": "n"}, {"type": "string"}]}}),
        "description_changed",
    ),
    (
        "allof_loosened",
        obj({"v": {"allOf": [{"type": "integer"}, {"minimum": 2}]}}),
        obj({"v": {"allOf": [{"type": "integer"}, {"minimum": 0}]}}),
        "bounds_loosened",
    ),
    (
        "not_narrowed",
        obj({"v": {"not": {"type": ["string", "null"]}}}),
        obj({"v": {"not": {"type": "string"}}}),
        "bounds_loosened",
    ),
    (
        "dependent_required_dropped",
        {"type": "object", "dependentRequired": {"a": ["b"]}},
        OBJ,
        "bounds_loosened",
    ),
]

# (name, X, Y, expected kind, a config valid under X and invalid under Y).
BREAKING = [
    (
        "required_added",
        obj({"a": {"type": "string"}}),
        obj({"a": {"type": "string"}}, required=["a"]),
        "required_added",
        {},
    ),
    (
        "property_removed_closed",
        obj({"a": {"type": "integer"}, "b": {}}),
        obj({"a": {"type": "integer"}}, additionalProperties=False),
        "property_removed",
        {"b": 1},
    ),
    ("property_added_open", OBJ, obj({"a": {"type": "string"}}), "property_added", {"a": 1}),
    (
        "type_narrowed",
        obj({"a": {"type": "number"}}),
        obj({"a": {"type": "integer"}}),
        "type_changed",
        {"a": 1.5},
    ),
    ("type_added", obj({"a": {}}), obj({"a": {"type": "string"}}), "type_changed", {"a": None}),
    (
        "enum_value_removed",
        obj({"m": {"enum": ["a", "b"]}}),
        obj({"m": {"enum": ["a"]}}),
        "enum_value_removed",
        {"m": "b"},
    ),
    (
        "additional_closed",
        obj({"a": {}}),
        obj({"a": {}}, additionalProperties=False),
        "additional_properties_closed",
        {"zz": 1},
    ),
    (
        "minimum_tightened",
        obj({"n": {"type": "integer", "minimum": 0}}),
        obj({"n": {"type": "integer", "minimum": 1}}),
        "bounds_tightened",
        {"n": 0},
    ),
    (
        "maximum_added",
        obj({"n": {"type": "integer"}}),
        obj({"n": {"type": "integer", "maximum": 9}}),
        "bounds_tightened",
        {"n": 10},
    ),
    (
        "exclusive_minimum",
        obj({"n": {"type": "number", "minimum": 0}}),
        obj({"n": {"type": "number", "exclusiveMinimum": 0}}),
        "bounds_tightened",
        {"n": 0},
    ),
    (
        "exclusive_maximum",
        obj({"n": {"type": "number", "maximum": 3}}),
        obj({"n": {"type": "number", "exclusiveMaximum": 3}}),
        "bounds_tightened",
        {"n": 3},
    ),
    (
        "min_length",
        obj({"s": {"type": "string"}}),
        obj({"s": {"type": "string", "minLength": 2}}),
        "bounds_tightened",
        {"s": "a"},
    ),
    (
        "max_length",
        obj({"s": {"type": "string", "maxLength": 5}}),
        obj({"s": {"type": "string", "maxLength": 2}}),
        "bounds_tightened",
        {"s": "abc"},
    ),
    (
        "min_items",
        obj({"l": {"type": "array"}}),
        obj({"l": {"type": "array", "minItems": 1}}),
        "bounds_tightened",
        {"l": []},
    ),
    (
        "max_items",
        obj({"l": {"type": "array", "maxItems": 3}}),
        obj({"l": {"type": "array", "maxItems": 1}}),
        "bounds_tightened",
        {"l": [1, 2]},
    ),
    ("min_properties", OBJ, {"type": "object", "minProperties": 1}, "bounds_tightened", {}),
    (
        "max_properties",
        OBJ,
        {"type": "object", "maxProperties": 1},
        "bounds_tightened",
        {"a": 1, "b": 2},
    ),
    (
        "multiple_of",
        obj({"n": {"type": "integer", "multipleOf": 3}}),
        obj({"n": {"type": "integer", "multipleOf": 6}}),
        "bounds_tightened",
        {"n": 3},
    ),
    (
        "unique_items",
        obj({"l": {"type": "array"}}),
        obj({"l": {"type": "array", "uniqueItems": True}}),
        "bounds_tightened",
        {"l": [1, 1]},
    ),
    (
        "pattern_changed",
        obj({"s": {"type": "string", "pattern": "^a"}}),
        obj({"s": {"type": "string", "pattern": "^b"}}),
        "unknown",
        {"s": "a"},
    ),
    (
        "nested_required",
        obj({"o": obj({"p": {"type": "integer"}})}),
        obj({"o": obj({"p": {"type": "integer"}}, required=["p"])}),
        "required_added",
        {"o": {}},
    ),
    (
        "array_items_narrowed",
        obj({"l": {"type": "array", "items": {"type": "number"}}}),
        obj({"l": {"type": "array", "items": {"type": "integer"}}}),
        "type_changed",
        {"l": [0.5]},
    ),
    (
        "prefix_items_narrowed",
        obj({"t": {"type": "array", "prefixItems": [{"type": "number"}]}}),
        obj({"t": {"type": "array", "prefixItems": [{"type": "integer"}]}}),
        "type_changed",
        {"t": [0.5]},
    ),
    (
        "ref_target_tightened",
        {"$defs": {"n": {"type": "number"}}, **obj({"a": {"$ref": "#/$defs/n"}})},
        {**DEFS_NUM, **obj({"a": {"$ref": "#/$defs/n"}})},
        "bounds_tightened",
        {"a": -1},
    ),
    (
        "anyof_narrowed",
        obj({"v": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}),
        obj({"v": {"anyOf": [{"type": "integer"}]}}),
        "variant_removed",
        {"v": "x"},
    ),
    (
        "oneof_overlap",
        obj({"v": {"oneOf": [{"type": "integer"}, {"type": "string"}]}}),
        obj({"v": {"oneOf": [{"type": "number"}, {"type": "integer"}]}}),
        "unknown",
        {"v": 1},
    ),
    (
        "allof_tightened",
        obj({"v": {"allOf": [{"type": "integer"}]}}),
        obj({"v": {"allOf": [{"type": "integer"}, {"maximum": 0}]}}),
        "bounds_tightened",
        {"v": 1},
    ),
    (
        "not_widened",
        obj({"v": {"not": {"type": "string"}}}),
        obj({"v": {"not": {"type": ["string", "null"]}}}),
        "bounds_tightened",
        {"v": None},
    ),
    (
        "unsupported_keyword",
        OBJ,
        {"type": "object", "dependentRequired": {"a": ["b"]}},
        "unknown",
        {"a": 1},
    ),
    ("schema_false", obj({"a": {}}), obj({"a": False}), "type_changed", {"a": 1}),
]


def _configs(schema: dict) -> st.SearchStrategy:
    """Configs drawn for `schema`, kept only if jsonschema itself (Draft 2020-12) accepts them."""
    draft7 = _as_draft7(schema)
    return from_schema(draft7).filter(Draft202012Validator(schema).is_valid)


def _as_draft7(schema):
    """hypothesis-jsonschema reads tuple arrays the Draft 7 way (`items` list)."""
    if isinstance(schema, list):
        return [_as_draft7(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _as_draft7(v) for k, v in schema.items() if k != "prefixItems"}
    if "prefixItems" in schema:
        out["items"] = _as_draft7(schema["prefixItems"])
        if "items" in schema:
            out["additionalItems"] = _as_draft7(schema["items"])
    return out


@pytest.mark.parametrize(
    ("name", "old", "new", "kind"), NON_BREAKING, ids=[case[0] for case in NON_BREAKING]
)
def test_non_breaking_pairs_accept_every_drawn_config(name, old, new, kind) -> None:
    changes = diff(old, new)
    assert observed(changes) == "warning", [c.as_dict() for c in changes]
    assert kind in {c.kind for c in changes}
    check = Draft202012Validator(new)

    @settings(
        max_examples=EXAMPLES, database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(_configs(old))
    def still_valid(config) -> None:
        assert check.is_valid(config), config

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        still_valid()


@pytest.mark.parametrize(
    ("name", "old", "new", "kind", "witness"), BREAKING, ids=[case[0] for case in BREAKING]
)
def test_breaking_pairs_have_a_config_that_fails(name, old, new, kind, witness) -> None:
    assert Draft202012Validator(old).is_valid(witness)
    assert not Draft202012Validator(new).is_valid(witness)
    changes = diff(old, new)
    assert observed(changes) == "breaking"
    assert kind in {c.kind for c in changes if c.breaking}, [c.as_dict() for c in changes]


def test_identical_schemas_and_no_schemas_have_no_changes() -> None:
    schema = {**DEFS_NUM, **obj({"a": {"$ref": "#/$defs/n"}}, required=["a"])}
    assert diff(schema, schema) == []
    assert diff(None, None) == []
    assert observed([]) == "none"


def test_paths_are_json_pointers_into_the_new_schema() -> None:
    old = obj({"a/b": obj({"c": {"type": "integer", "maximum": 5}})})
    new = obj({"a/b": obj({"c": {"type": "integer", "maximum": 4}})})
    [change] = diff(old, new)
    assert change.path == "/properties/a~1b/properties/c/maximum"
    ref_old = {**DEFS_NUM, **obj({"a": {"$ref": "#/$defs/n"}})}
    ref_new = {
        "$defs": {"n": {"type": "number", "minimum": 1}},
        **obj({"a": {"$ref": "#/$defs/n"}}),
    }
    assert [c.path for c in diff(ref_old, ref_new)] == ["/$defs/n/minimum"]


def test_recursive_refs_terminate() -> None:
    tree = {
        "$defs": {"t": obj({"kids": {"type": "array", "items": {"$ref": "#/$defs/t"}}})},
        "$ref": "#/$defs/t",
    }
    wider = {
        "$defs": {
            "t": obj(
                {
                    "kids": {"type": "array", "items": {"$ref": "#/$defs/t"}},
                    "n": {"type": "integer"},
                }
            )
        },
        "$ref": "#/$defs/t",
    }
    assert observed(diff(tree, tree)) == "none"
    assert observed(diff(tree, wider)) == "breaking"  # `n` was open before: {"n": "x"} passed


def test_unresolvable_ref_is_unknown() -> None:
    changes = diff(obj({"a": {}}), obj({"a": {"$ref": "https://example.invalid/s.json"}}))
    assert [c.kind for c in changes if c.breaking] == ["unknown"]
