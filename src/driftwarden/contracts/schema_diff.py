"""What changed between two config schemas, and whether a config valid before can now fail.

X→Y is non-breaking only when every instance valid under X is valid under Y. The walk proves
that keyword by keyword (each of Y's constraints implied by X's); whatever it cannot prove is
breaking, and a keyword it does not understand is kind `unknown`, also breaking
(docs/reference/drift.md, contract versions and schemas). Pure: no I/O, `$ref` via `referencing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from driftwarden.contracts import schema_keywords as kw
from driftwarden.contracts.schema_keywords import Change

if TYPE_CHECKING:  # referencing does not export the class its Registry.resolver() returns
    from referencing._core import Resolver

__all__ = ["Change", "diff", "observed"]

ROOT_URI = "urn:driftwarden:config-schema"
MAX_DEPTH = 64
OBJECT_KEYWORDS = {"properties", "required", "additionalProperties"}
ARRAY_KEYWORDS = {"items", "prefixItems"}
COMPOSITION = {"allOf", "anyOf", "oneOf", "not"}
# Keywords whose meaning depends on their siblings: never judged apart from them.
ENTANGLED = {"patternProperties", "unevaluatedProperties", "unevaluatedItems"}
HANDLED = (
    {"type", "enum", "const", "multipleOf", "uniqueItems", "pattern", "$ref", *kw.BOUNDS}
    | OBJECT_KEYWORDS
    | ARRAY_KEYWORDS
    | COMPOSITION
    | set(kw.ANNOTATIONS)
    | kw.STRUCTURAL
)


def diff(old: Any, new: Any) -> list[Change]:
    """Every change from schema `old` to schema `new`; None means "no schema" (anything goes)."""
    walk = _Walk(_resolver(old), _resolver(new))
    return walk.compare(
        True if old is None else old, walk.x_root, True if new is None else new, walk.y_root, ""
    )


def observed(changes: list[Change]) -> str:
    """What the schemas show: `breaking` if any change is, else `warning` if any, else `none`."""
    if any(c.breaking for c in changes):
        return "breaking"
    return "warning" if changes else "none"


def _resolver(schema: Any) -> Resolver:
    contents = True if schema is None else schema
    resource = Resource.from_contents(contents, default_specification=DRAFT202012)
    return Registry().with_resource(ROOT_URI, resource).resolver(base_uri=ROOT_URI)


def escape(token: str) -> str:
    """One JSON pointer reference token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


def _is_empty(schema: Any) -> bool:
    return schema is True or (
        isinstance(schema, dict) and not set(schema) - kw.STRUCTURAL - set(kw.ANNOTATIONS)
    )


class _Walk:
    """One comparison: the two schemas' resolvers and the `$ref` pairs already being compared."""

    def __init__(self, x_root: Resolver, y_root: Resolver) -> None:
        self.x_root, self.y_root = x_root, y_root
        self.seen: set[tuple[str, str]] = set()
        self.depth = 0

    def compare(self, x: Any, xr: Resolver, y: Any, yr: Resolver, path: str) -> list[Change]:
        """Changes from subschema `x` to `y`; assumes a `$ref` pair already on the stack holds."""
        if self.depth > MAX_DEPTH:
            return [Change(path, "unknown", True, "schema nesting too deep to judge")]
        try:
            x, xr, x_ref = _deref(x, xr)
            y, yr, y_ref = _deref(y, yr)
        except Unresolvable as exc:
            return [Change(path, "unknown", True, f"cannot resolve $ref {exc.ref!r}")]
        if y_ref and y_ref.startswith("#/"):
            path = y_ref[1:]
        pair = (x_ref or "", y_ref or "")
        if (x_ref or y_ref) and pair in self.seen:
            return []
        self.seen.add(pair)
        self.depth += 1
        try:
            return self._compare(x, xr, y, yr, path)
        finally:
            self.depth -= 1
            self.seen.discard(pair)

    def _compare(self, x: Any, xr: Resolver, y: Any, yr: Resolver, path: str) -> list[Change]:
        if x is False:
            return []
        if y is False:
            return [Change(path, "type_changed", True, "the schema now accepts nothing")]
        x = {} if x is True else x
        y = {} if y is True else y
        if "$ref" not in kw.canonical([x, y]) and kw.canonical(x) == kw.canonical(y):
            return []
        changes = kw.type_change(x, y, path) + kw.enum_change(x, y, path)
        changes += kw.bounds_change(x, y, path) + kw.annotation_changes(x, y, path)
        x_types = kw.types_of(x)
        if ENTANGLED & (set(x) | set(y)):
            changes += _entangled(x, y, path)
        else:
            if "object" in x_types:
                changes += self._objects(x, xr, y, yr, path)
            if "array" in x_types:
                changes += self._arrays(x, xr, y, yr, path)
        changes += self._compositions(x, xr, y, yr, path)
        return changes + _unhandled(x, y, path)

    def _objects(self, x: dict, xr: Resolver, y: dict, yr: Resolver, path: str) -> list[Change]:
        xp, yp = x.get("properties", {}), y.get("properties", {})
        xa, ya = x.get("additionalProperties", True), y.get("additionalProperties", True)
        changes: list[Change] = []
        for name in sorted(set(xp) | set(yp)):
            where = f"{path}/properties/{escape(name)}"
            if name in xp and name in yp:
                changes += self.compare(xp[name], xr, yp[name], yr, where)
                continue
            sub = self.compare(xp.get(name, xa), xr, yp.get(name, ya), yr, where)
            broke = any(c.breaking for c in sub)
            if name in yp:
                detail = (
                    "configs valid before may already carry it with a value now refused"
                    if broke
                    else "optional, and any value valid before still passes"
                )
                changes.append(Change(where, "property_added", broke, f"{name!r}: {detail}"))
            else:
                detail = "its values are now refused" if broke else "its values still pass"
                changes.append(Change(where, "property_removed", broke, f"{name!r}: {detail}"))
        changes += self._additional(xa, xr, ya, yr, path)
        rx, ry = set(x.get("required", [])), set(y.get("required", []))
        changes += [
            Change(f"{path}/required", "required_added", True, f"{n!r} is now required")
            for n in sorted(ry - rx)
        ]
        changes += [
            Change(f"{path}/required", "required_removed", False, f"{n!r} is optional now")
            for n in sorted(rx - ry)
        ]
        return changes

    def _additional(self, xa: Any, xr: Resolver, ya: Any, yr: Resolver, path: str) -> list:
        where = f"{path}/additionalProperties"
        if ya is False and xa is not False:
            return [
                Change(
                    where,
                    "additional_properties_closed",
                    True,
                    "properties not listed are now refused",
                )
            ]
        if xa is False and ya is not False:
            return [Change(where, "bounds_loosened", False, "properties not listed are allowed")]
        return self.compare(xa, xr, ya, yr, where)

    def _arrays(self, x: dict, xr: Resolver, y: dict, yr: Resolver, path: str) -> list[Change]:
        xpre, ypre = x.get("prefixItems", []), y.get("prefixItems", [])
        xi, yi = x.get("items", True), y.get("items", True)
        changes: list[Change] = []
        for i in range(max(len(xpre), len(ypre))):
            sx = xpre[i] if i < len(xpre) else xi
            sy = ypre[i] if i < len(ypre) else yi
            where = f"{path}/prefixItems/{i}" if i < len(ypre) else f"{path}/items"
            changes += self.compare(sx, xr, sy, yr, where)
        if "items" in x or "items" in y:
            changes += self.compare(xi, xr, yi, yr, f"{path}/items")
        return changes

    def _compositions(self, x: dict, xr: Resolver, y: dict, yr: Resolver, path: str) -> list:
        changes: list[Change] = []
        for name in sorted(COMPOSITION & (set(x) | set(y))):
            where = f"{path}/{name}"
            if name not in y:
                changes.append(Change(where, "bounds_loosened", False, f"{name} removed"))
            elif name == "allOf":
                changes += self._all_of(x, xr, y, yr, where)
            elif name == "anyOf":
                changes += self._any_of(x, xr, y, yr, where)
            elif name == "oneOf":
                changes += self._one_of(x, xr, y, yr, where)
            else:
                changes += self._not(x, xr, y, yr, where)
        return changes

    def _all_of(self, x: dict, xr: Resolver, y: dict, yr: Resolver, where: str) -> list:
        """Each of Y's conjuncts must follow from X's conjunct at the same index, or X itself."""
        xs, base = x.get("allOf", []), {k: v for k, v in x.items() if k != "allOf"}
        changes: list[Change] = []
        for i, branch in enumerate(y["allOf"]):
            source = xs[i] if i < len(xs) else base
            changes += self.compare(source, xr, branch, yr, f"{where}/{i}")
        return changes

    def _any_of(self, x: dict, xr: Resolver, y: dict, yr: Resolver, where: str) -> list:
        """Each of X's alternatives (or X itself) must fit inside some alternative of Y."""
        ys = y["anyOf"]
        base = {k: v for k, v in x.items() if k not in COMPOSITION}
        sources = x.get("anyOf", [base])
        changes: list[Change] = []
        for j, source in enumerate(sources):
            order = ([j] if j < len(ys) else []) + [i for i in range(len(ys)) if i != j]
            tried = [self.compare(source, xr, ys[i], yr, f"{where}/{i}") for i in order]
            fits = next((t for t in tried if not any(c.breaking for c in t)), None)
            if fits is None:
                changes.append(
                    Change(
                        f"{where}/{j}",
                        "variant_removed",
                        True,
                        "a config valid before matches no alternative now",
                    )
                )
            elif j < len(ys) and fits is tried[0]:
                changes += fits
        changes += [
            Change(f"{where}/{i}", "variant_added", False, "an alternative was added")
            for i in range(len(sources), len(ys))
            if "anyOf" in x
        ]
        if "anyOf" not in x and not any(c.breaking for c in changes):
            changes.append(
                Change(
                    where,
                    "variant_added",
                    False,
                    "anyOf added; every config valid before fits an alternative",
                )
            )
        return changes

    def _one_of(self, x: dict, xr: Resolver, y: dict, yr: Resolver, where: str) -> list:
        """Exclusivity is only provable here when every alternative stays equivalent."""
        xs, ys = x.get("oneOf"), y["oneOf"]
        if xs is None or len(xs) != len(ys):
            return [Change(where, "unknown", True, "oneOf alternatives changed in number")]
        changes: list[Change] = []
        for i, (sx, sy) in enumerate(zip(xs, ys, strict=True)):
            forward = self.compare(sx, xr, sy, yr, f"{where}/{i}")
            backward = _Walk(yr, xr).compare(sy, yr, sx, xr, f"{where}/{i}")
            if any(c.breaking for c in forward + backward):
                return [
                    Change(
                        f"{where}/{i}",
                        "unknown",
                        True,
                        "an alternative of oneOf changed what it accepts",
                    )
                ]
            changes += forward
        return changes

    def _not(self, x: dict, xr: Resolver, y: dict, yr: Resolver, where: str) -> list:
        """not N_x ⊆ not N_y exactly when N_y ⊆ N_x: the comparison runs backwards."""
        if "not" not in x:
            return [Change(where, "unknown", True, "a `not` was added")]
        backward = _Walk(yr, xr).compare(y["not"], yr, x["not"], xr, where)
        if any(c.breaking for c in backward):
            return [Change(where, "bounds_tightened", True, "`not` now refuses more")]
        return [Change(where, "bounds_loosened", False, "`not` refuses less")] if backward else []


def _deref(schema: Any, resolver: Resolver) -> tuple[Any, Resolver, str | None]:
    """Follow a `$ref` that stands alone; one with assertion siblings becomes an `allOf`."""
    followed = None
    for _ in range(MAX_DEPTH):
        if not isinstance(schema, dict) or "$ref" not in schema:
            return schema, resolver, followed
        ref = schema["$ref"]
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        if not _is_empty(siblings):
            allof = [*siblings.get("allOf", []), {"$ref": ref}]
            return {**siblings, "allOf": allof}, resolver, followed
        resolved = resolver.lookup(ref)
        schema, resolver, followed = resolved.contents, resolved.resolver, ref
    raise Unresolvable(ref=str(followed))


def _entangled(x: dict, y: dict, path: str) -> list[Change]:
    """With patternProperties or unevaluated*, the object/array part is judged only if untouched."""
    names = ENTANGLED | OBJECT_KEYWORDS | ARRAY_KEYWORDS
    same = [kw.canonical(x.get(n)) == kw.canonical(y.get(n)) for n in names]
    if all(same) and "$ref" not in kw.canonical([x.get(n) for n in names]):
        return []
    return [
        Change(
            path,
            "unknown",
            True,
            "cannot judge object or array keywords next to patternProperties or unevaluated*",
        )
    ]


def _unhandled(x: dict, y: dict, path: str) -> list[Change]:
    """Keywords the walk does not judge: dropping one loosens, anything else is unknown."""
    changes: list[Change] = []
    for name in sorted((set(x) | set(y)) - HANDLED - ENTANGLED):
        where = f"{path}/{escape(name)}"
        if name not in y:
            changes.append(Change(where, "bounds_loosened", False, f"{name} removed"))
        elif (
            name not in x
            or kw.canonical(x[name]) != kw.canonical(y[name])
            or "$ref" in kw.canonical(y[name])
        ):
            changes.append(Change(where, "unknown", True, f"cannot judge a change to {name}"))
    return changes
