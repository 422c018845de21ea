"""Severity: the version drift, raised by what the schemas and configs show.

A binding's severity is its drift, raised to `breaking` when its effective config fails the
current schema or the diff from its bound version's schema to the current one is breaking
while the version numbers say otherwise (docs/reference/drift.md, severity). One `Content`
per scan loads the schemas once and judges each distinct (definition, bound, config) once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftwarden.contracts import versions
from driftwarden.contracts.configs import config_errors, effective_config
from driftwarden.contracts.drift import SEVERITY, classify
from driftwarden.contracts.models import ContractDefinition, ContractDefinitionVersion


@dataclass(frozen=True)
class Assessment:
    """What one binding's versions and config add up to."""

    drift: str
    reason: str
    config_valid: bool | None
    config_errors: list[dict[str, str]] | None
    undeclared_breaking: bool
    severity: str
    schema_changes: list[dict[str, Any]] | None = None  # the breaking ones, when undeclared


def raise_severity(drift: str, *, config_valid: bool | None, undeclared: bool) -> str:
    """The drift, raised to `breaking` by an invalid config or an undeclared breaking change."""
    if (config_valid is False or undeclared) and SEVERITY[drift] < SEVERITY["breaking"]:
        return "breaking"
    return drift


def config_key(config: Any) -> str:
    """Configs equal as JSON share one key (and so one validation)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


@lru_cache(maxsize=65536)
def _errors(schema_key: str, config_json: str) -> tuple[dict[str, str], ...]:
    """Validation results outlive a scan: the next one over the same configs costs nothing."""
    return tuple(config_errors(json.loads(schema_key), json.loads(config_json)) or ())


@lru_cache(maxsize=4096)
def _undeclared(
    bound: str | None, current: str | None, old_key: str, new_key: str
) -> tuple[dict[str, Any], ...] | None:
    """The breaking changes of one schema pair when its versions declare none; one diff each."""
    judged = versions.judge(
        bound, current, json.loads(old_key), json.loads(new_key), both_stored=True
    )
    if not judged["undeclared_breaking"]:
        return None
    return tuple(c for c in judged["changes"] if c["breaking"])


@lru_cache(maxsize=65536)
def versions_only(bound: str | None, current: str | None) -> Assessment:
    """The assessment of a binding whose definition has no schema: its versions decide it all.

    Pure, so it is cached across scans: a fleet has few distinct (bound, current) pairs.
    """
    result = classify(bound, current)
    return Assessment(result.drift, result.reason, None, None, False, result.drift)


class Content:
    """The schemas of some definitions, with every judgement cached for the life of one scan."""

    def __init__(
        self,
        definitions: dict[uuid.UUID, tuple[Any, dict[str, Any]]],
        schemas: dict[tuple[uuid.UUID, str], Any],
    ) -> None:
        self.definitions = definitions  # id -> (current config_schema, default_config)
        self.schemas = schemas  # (id, version) -> that version's stored config_schema
        self._valid: dict[tuple[uuid.UUID, str], list[dict[str, str]]] = {}
        self._schema_keys = {d: config_key(schema) for d, (schema, _) in definitions.items()}
        self._undeclared: dict[tuple[uuid.UUID, str | None, str | None], list | None] = {}

    @property
    def schema_ids(self) -> list[uuid.UUID]:
        """Definitions whose current version has a schema: only their configs matter."""
        return list(self.definitions)

    def errors(self, definition_id: uuid.UUID, config: Any) -> list[dict[str, str]] | None:
        if definition_id not in self.definitions:
            return None
        key = (definition_id, config_key(config))
        if key not in self._valid:
            default = self.definitions[definition_id][1]
            merged = effective_config(default, config)
            self._valid[key] = list(_errors(self._schema_keys[definition_id], config_key(merged)))
        return self._valid[key]

    def undeclared(
        self, definition_id: uuid.UUID, bound: str | None, current: str | None
    ) -> list[dict[str, Any]] | None:
        """The breaking schema changes the version numbers do not declare, or None."""
        key = (definition_id, bound, current)
        if key not in self._undeclared:
            old = self.schemas.get((definition_id, bound or ""))
            new = self.definitions.get(definition_id, (None, {}))[0]
            found = None
            if old is not None and new is not None:
                found = _undeclared(
                    bound, current, config_key(old), self._schema_keys[definition_id]
                )
            self._undeclared[key] = None if found is None else list(found)
        return self._undeclared[key]

    def assess(
        self, definition_id: uuid.UUID, bound: str | None, current: str | None, config: Any
    ) -> Assessment:
        if definition_id not in self.definitions:
            return versions_only(bound, current)
        result = classify(bound, current)
        errors = self.errors(definition_id, config)
        valid = None if errors is None else not errors
        changes = self.undeclared(definition_id, bound, current)
        undeclared = changes is not None
        return Assessment(
            result.drift,
            result.reason,
            valid,
            errors,
            undeclared,
            raise_severity(result.drift, config_valid=valid, undeclared=undeclared),
            changes,
        )


def load(session: Session, *, definition_ids: Iterable[uuid.UUID]) -> Content:
    """The schema'd definitions among `definition_ids`, and their versions' schemas."""
    ids = list(definition_ids)
    definitions: dict[uuid.UUID, tuple[Any, dict[str, Any]]] = {}
    for start in range(0, len(ids), 1000):
        query = select(
            ContractDefinition.id,
            ContractDefinition.config_schema,
            ContractDefinition.default_config,
        ).where(
            ContractDefinition.id.in_(ids[start : start + 1000]),
            ContractDefinition.config_schema.is_not(None),
        )
        definitions.update((row[0], (row[1], row[2] or {})) for row in session.execute(query))
    return with_versions(session, definitions)


def with_versions(
    session: Session, definitions: dict[uuid.UUID, tuple[Any, dict[str, Any]]]
) -> Content:
    """Content for definitions already read (id -> (schema, default_config)); no query if none."""
    schemas: dict[tuple[uuid.UUID, str], Any] = {}
    schema_ids = list(definitions)
    for start in range(0, len(schema_ids), 1000):
        query = select(
            ContractDefinitionVersion.definition_id,
            ContractDefinitionVersion.contract_version,
            ContractDefinitionVersion.config_schema,
        ).where(
            ContractDefinitionVersion.definition_id.in_(schema_ids[start : start + 1000]),
            ContractDefinitionVersion.config_schema.is_not(None),
        )
        schemas.update(((row[0], row[1]), row[2]) for row in session.execute(query))
    return Content(definitions, schemas)
