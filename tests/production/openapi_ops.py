"""Every operation of the published OpenAPI document.

Read from the document, so the production tests grow with the routes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from driftwarden.api.app import create_app
from driftwarden.settings import Settings

UNAUTHENTICATED = frozenset({"healthz", "readyz"})


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    path_params: tuple[str, ...]
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    has_body: bool = False
    body_required: bool = False

    def url(self, **values: str) -> str:
        """The path with every parameter filled (a random UUID unless given)."""
        url = self.path
        for name in self.path_params:
            url = url.replace("{" + name + "}", values.get(name, str(uuid.uuid4())))
        return url

    @property
    def needs_key(self) -> bool:
        return self.operation_id not in UNAUTHENTICATED

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _schema_of(param: dict[str, Any]) -> dict[str, Any]:
    schema = param.get("schema", {})
    for option in schema.get("anyOf", []):  # Optional[X] is anyOf [X, null]
        if option.get("type") != "null":
            return option
    return schema


def _operation(path: str, method: str, spec: dict[str, Any]) -> Operation:
    params = spec.get("parameters", [])
    return Operation(
        method=method.upper(),
        path=path,
        operation_id=spec["operationId"],
        path_params=tuple(p["name"] for p in params if p["in"] == "path"),
        query={p["name"]: _schema_of(p) for p in params if p["in"] == "query"},
        has_body="requestBody" in spec,
        body_required=spec.get("requestBody", {}).get("required", False),
    )


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """Read from the app itself: no database is touched to build the document."""
    return create_app(Settings(DATABASE_URL="sqlite://")).openapi()


@lru_cache(maxsize=1)
def operations() -> tuple[Operation, ...]:
    return tuple(
        _operation(path, method, spec)
        for path, item in sorted(document()["paths"].items())
        for method, spec in sorted(item.items())
        if method in {"get", "post", "put", "patch", "delete"}
    )
