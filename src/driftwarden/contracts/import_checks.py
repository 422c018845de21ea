"""What an import document must not say, beyond its shape: checked before anything is written.

Pure: duplicates within the document, bindings to definitions that exist nowhere (neither in it
nor in the org nor builtin), and config schemas that are not JSON Schema. Each problem is a
pydantic-style error with its `loc`, so the API and the CLI report them like validation errors.
"""

from __future__ import annotations

from typing import Any

from driftwarden.contracts.configs import check_schema
from driftwarden.contracts.schemas import ImportDocument
from driftwarden.errors import Invalid

DefKey = tuple[str, str]


def _error(loc: list[Any], msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": kind}


def problems(doc: ImportDocument, known: set[DefKey]) -> list[dict[str, Any]]:
    """Duplicates within the document and bindings to definitions that exist nowhere."""
    problems: list[dict[str, Any]] = []
    seen_defs: set[DefKey] = set()
    for i, d in enumerate(doc.definitions):
        if (d.definition_type, d.key) in seen_defs:
            problems.append(
                _error(
                    ["definitions", i, "key"],
                    f"duplicate definition {d.definition_type}:{d.key}",
                    "duplicate",
                )
            )
        seen_defs.add((d.definition_type, d.key))
        try:
            check_schema(d.config_schema)
        except Invalid as exc:
            problems.append(_error(["definitions", i, "config_schema"], exc.message, "json_schema"))
    known = known | seen_defs
    seen_agents: set[str] = set()
    for i, agent in enumerate(doc.agents):
        if agent.external_id in seen_agents:
            problems.append(
                _error(
                    ["agents", i, "external_id"],
                    f"duplicate agent {agent.external_id!r}",
                    "duplicate",
                )
            )
        seen_agents.add(agent.external_id)
        seen_bindings: set[DefKey] = set()
        for j, b in enumerate(agent.bindings):
            ref = (b.definition_type, b.key)
            if ref not in known:
                problems.append(
                    _error(
                        ["agents", i, "bindings", j, "key"],
                        f"no {b.definition_type} definition with key {b.key!r}",
                        "unknown_definition",
                    )
                )
            elif ref in seen_bindings:
                problems.append(
                    _error(
                        ["agents", i, "bindings", j, "key"],
                        f"duplicate binding to {ref[0]}:{ref[1]}",
                        "duplicate",
                    )
                )
            seen_bindings.add(ref)
    return problems
