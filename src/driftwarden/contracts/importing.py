"""Bulk import: upsert definitions, agents and bindings from one document, set-based, atomic.

Everything is checked before anything is written (import_checks). Existing rows are read in
chunks, new rows are streamed in as they are made (COPY on Postgres, one executemany on SQLite,
see bulk) and changed rows are bulk UPDATEs by primary key, so the statement count does not grow
with the number of rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import psycopg
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from driftwarden.agents.models import Agent
from driftwarden.contracts import bulk, import_checks
from driftwarden.contracts.import_checks import DefKey
from driftwarden.contracts.models import (
    ContractBinding,
    ContractDefinition,
    ContractDefinitionVersion,
)
from driftwarden.contracts.schemas import (
    ImportAgent,
    ImportBinding,
    ImportDefinition,
    ImportDocument,
)
from driftwarden.contracts.service import visible_to
from driftwarden.db.helpers import chunked
from driftwarden.errors import Conflict, Invalid

AGENT_FIELDS = ("name", "description", "agent_type", "status", "model", "metadata")
AGENT_COLUMNS = ("id", "org_id", "external_id", *AGENT_FIELDS, "created_at", "updated_at")
BINDING_FIELDS = ("enabled", "config", "definition_contract_version")
BINDING_COLUMNS = ("id", "org_id", "agent_id", "definition_id", *BINDING_FIELDS)
BINDING_COLUMNS += ("created_at", "updated_at")
DEFINITION_FIELDS = (
    "name",
    "description",
    "contract_version",
    "default_config",
    "config_schema",
    "is_active",
)


def _visible_definitions(
    session: Session, org_id: uuid.UUID
) -> tuple[dict[DefKey, dict], dict[DefKey, dict]]:
    """(org's own by type+key, builtins by type+key), as plain dicts."""
    cols = (
        ContractDefinition.id,
        ContractDefinition.org_id,
        ContractDefinition.definition_type,
        ContractDefinition.key,
        *(getattr(ContractDefinition, f) for f in DEFINITION_FIELDS),
    )
    own: dict[DefKey, dict] = {}
    builtin: dict[DefKey, dict] = {}
    for row in session.execute(select(*cols).where(visible_to(org_id))).mappings():
        (own if row["org_id"] is not None else builtin)[(row["definition_type"], row["key"])] = (
            dict(row)
        )
    return own, builtin


def _changes(
    given: dict[str, Any], existing: dict[str, Any], fields: Iterable[str]
) -> dict[str, Any]:
    return {f: given[f] for f in fields if f in given and given[f] != existing[f]}


def _upsert_definitions(
    session: Session,
    org_id: uuid.UUID,
    items: list[ImportDefinition],
    own: dict[DefKey, dict],
    now: datetime,
) -> dict[str, Any]:
    new_rows, updates, outcomes = [], [], []
    for item in items:
        ref = (item.definition_type, item.key)
        given = {
            k: v
            for k, v in item.model_dump(include=set(DEFINITION_FIELDS)).items()
            if v is not None
        }
        existing = own.get(ref)
        if existing is None:
            row = {
                "id": uuid.uuid4(),
                "org_id": org_id,
                "definition_type": ref[0],
                "key": ref[1],
                "default_config": {},
                "config_schema": None,
                "is_active": True,
                "description": None,
                **given,
                "created_at": now,
                "updated_at": now,
            }
            new_rows.append(row)
            outcome = "created"
        else:
            changes = _changes(given, existing, DEFINITION_FIELDS)
            if changes:
                updates.append({"id": existing["id"], **changes, "updated_at": now})
            row, outcome = {**existing, **changes}, "updated" if changes else "unchanged"
        own[ref] = row
        outcomes.append(
            {"id": row["id"], "definition_type": ref[0], "key": ref[1], "outcome": outcome}
        )
    _insert_dicts(session, ContractDefinition, new_rows)
    bulk.update_rows(session, ContractDefinition, updates)
    _write_versions(session, items, own, now)
    return _tally(outcomes, items=outcomes)


def _write_versions(
    session: Session, items: list[ImportDefinition], defs: dict[DefKey, dict], now: datetime
) -> None:
    """A version row per imported definition's version, unless one exists (then it must match)."""
    wanted = {defs[(i.definition_type, i.key)]["id"]: i for i in items}
    stored: dict[uuid.UUID, dict[str, Any]] = {}
    cols = (
        ContractDefinitionVersion.definition_id,
        ContractDefinitionVersion.contract_version,
        ContractDefinitionVersion.config_schema,
        ContractDefinitionVersion.changelog,
    )
    for chunk in chunked(list(wanted)):
        query = select(*cols).where(ContractDefinitionVersion.definition_id.in_(chunk))
        for row in session.execute(query).mappings():
            if row["contract_version"] == defs_version(defs, wanted[row["definition_id"]]):
                stored[row["definition_id"]] = dict(row)
    new_rows = []
    for definition_id, item in wanted.items():
        row = defs[(item.definition_type, item.key)]
        given = {
            k: getattr(item, k)
            for k in ("config_schema", "changelog")
            if k in item.model_fields_set
        }
        found = stored.get(definition_id)
        if found is not None:
            if any(found[k] != v for k, v in given.items()):
                name = f"{item.definition_type}:{item.key} {row['contract_version']!r}"
                raise Conflict(
                    f"{name} exists with other content; versions are immutable",
                    code="CONTRACT_VERSION_IMMUTABLE",
                )
            continue
        new_rows.append(
            {
                "id": uuid.uuid4(),
                "org_id": row["org_id"],
                "definition_id": definition_id,
                "contract_version": row["contract_version"],
                "config_schema": row.get("config_schema"),
                "default_config": row.get("default_config") or {},
                "changelog": item.changelog,
                "created_at": now,
                "created_by_api_key_id": None,
            }
        )
    _insert_dicts(session, ContractDefinitionVersion, new_rows)


def defs_version(defs: dict[DefKey, dict], item: ImportDefinition) -> str:
    return defs[(item.definition_type, item.key)]["contract_version"]


def _existing_agents(
    session: Session, org_id: uuid.UUID, external_ids: list[str]
) -> dict[str, dict]:
    cols = (
        Agent.id,
        Agent.external_id,
        Agent.name,
        Agent.description,
        Agent.agent_type,
        Agent.status,
        Agent.model,
        Agent.metadata_.label("metadata"),
    )
    found: dict[str, dict] = {}
    for chunk in chunked(external_ids):
        query = select(*cols).where(Agent.org_id == org_id, Agent.external_id.in_(chunk))
        found.update((row["external_id"], dict(row)) for row in session.execute(query).mappings())
    return found


def _agent_fields(agent: ImportAgent) -> dict[str, Any]:
    """The fields the document sets (attribute reads: model_dump per row is the slow path)."""
    return {f: v for f in AGENT_FIELDS if (v := getattr(agent, f)) is not None}


def _new_agent(
    org_id: uuid.UUID, agent: ImportAgent, given: dict[str, Any], now: datetime
) -> tuple[Any, ...]:
    """A row in AGENT_COLUMNS order, with the defaults of an agent created through the API."""
    return (
        uuid.uuid4(),
        org_id,
        agent.external_id,
        given["name"],
        given.get("description"),
        given.get("agent_type"),
        given.get("status", "backlog"),
        given.get("model"),
        given.get("metadata", {}),
        now,
        now,
    )


def _upsert_agents(
    session: Session, org_id: uuid.UUID, agents: list[ImportAgent], now: datetime
) -> tuple[dict[str, uuid.UUID], set[uuid.UUID], dict[str, Any]]:
    """Returns (agent id by external_id, ids of agents that existed before, tally)."""
    existing = _existing_agents(session, org_id, [a.external_id for a in agents])
    new_rows, updates, ids = [], [], {}
    tally: dict[str, Any] = {"created": 0, "updated": 0, "unchanged": 0}
    tally |= {"created_external_ids": [], "updated_external_ids": []}
    for agent in agents:
        given = _agent_fields(agent)
        found = existing.get(agent.external_id)
        if found is None:
            new_rows.append(_new_agent(org_id, agent, given, now))
            ids[agent.external_id] = new_rows[-1][0]
            outcome = "created"
        else:
            changes = _changes(given, found, AGENT_FIELDS)
            if changes:
                if "metadata" in changes:
                    changes["metadata_"] = changes.pop("metadata")
                updates.append({"id": found["id"], **changes, "updated_at": now})
            ids[agent.external_id] = found["id"]
            outcome = "updated" if changes else "unchanged"
        tally[outcome] += 1
        if outcome != "unchanged":
            tally[f"{outcome}_external_ids"].append(agent.external_id)
    bulk.insert_rows(session, Agent.__table__, AGENT_COLUMNS, new_rows)
    bulk.update_rows(session, Agent, updates)
    return ids, {e["id"] for e in existing.values()}, tally


def _existing_bindings(
    session: Session, agent_ids: list[uuid.UUID]
) -> dict[tuple[uuid.UUID, uuid.UUID], dict]:
    cols = (
        ContractBinding.id,
        ContractBinding.agent_id,
        ContractBinding.definition_id,
        ContractBinding.enabled,
        ContractBinding.config,
        ContractBinding.definition_contract_version,
    )
    found: dict[tuple[uuid.UUID, uuid.UUID], dict] = {}
    for chunk in chunked(agent_ids):
        for row in session.execute(
            select(*cols).where(ContractBinding.agent_id.in_(chunk))
        ).mappings():
            found[(row["agent_id"], row["definition_id"])] = dict(row)
    return found


def _given_binding_fields(binding: ImportBinding) -> dict[str, Any]:
    """The fields the document sets.

    Attribute reads: model_dump per row costs seconds at 100 000 rows.
    """
    given: dict[str, Any] = {}
    if binding.enabled is not None:
        given["enabled"] = binding.enabled
    if binding.config is not None:
        given["config"] = binding.config
    if "definition_contract_version" in binding.model_fields_set:
        given["definition_contract_version"] = binding.definition_contract_version
    return given


def _new_binding(
    org_id: uuid.UUID,
    agent_id: uuid.UUID,
    definition: dict[str, Any],
    binding: ImportBinding,
    now: datetime,
) -> tuple[Any, ...]:
    """A row in BINDING_COLUMNS order; the bound version defaults to the definition's current."""
    version = (
        binding.definition_contract_version
        if "definition_contract_version" in binding.model_fields_set
        else definition["contract_version"]
    )
    enabled = True if binding.enabled is None else binding.enabled
    config = {} if binding.config is None else binding.config
    return (uuid.uuid4(), org_id, agent_id, definition["id"], enabled, config, version, now, now)


def _upsert_bindings(
    session: Session,
    org_id: uuid.UUID,
    doc: ImportDocument,
    agent_ids: dict[str, uuid.UUID],
    prior_agents: set[uuid.UUID],
    defs: dict[DefKey, dict],
    now: datetime,
) -> dict[str, Any]:
    """New bindings are streamed into the table as they are made; changed ones updated after."""
    existing = _existing_bindings(session, sorted(prior_agents))
    updates: list[dict[str, Any]] = []
    tally = {"created": 0, "updated": 0, "unchanged": 0}

    def new_rows() -> Iterator[tuple[Any, ...]]:
        for agent in doc.agents:
            agent_id = agent_ids[agent.external_id]
            for binding in agent.bindings:
                definition = defs[(binding.definition_type, binding.key)]
                found = existing.get((agent_id, definition["id"]))
                if found is None:
                    tally["created"] += 1
                    yield _new_binding(org_id, agent_id, definition, binding, now)
                    continue
                changes = _changes(_given_binding_fields(binding), found, BINDING_FIELDS)
                if changes:
                    updates.append({"id": found["id"], **changes, "updated_at": now})
                tally["updated" if changes else "unchanged"] += 1

    bulk.insert_rows(session, ContractBinding.__table__, BINDING_COLUMNS, new_rows())
    bulk.update_rows(session, ContractBinding, updates)
    return tally


def _insert_dicts(session: Session, model: Any, rows: list[dict[str, Any]]) -> None:
    """The few definition and version rows, keyed by column name."""
    names = [c.name for c in model.__table__.columns]
    bulk.insert_rows(session, model.__table__, names, [[r.get(n) for n in names] for r in rows])


def _tally(outcomes: list[dict], **extra: Any) -> dict[str, Any]:
    counts = {
        name: sum(1 for o in outcomes if o["outcome"] == name)
        for name in ("created", "updated", "unchanged")
    }
    return {**counts, **extra}


def import_document(
    session: Session, *, org_id: uuid.UUID, doc: ImportDocument, now: datetime
) -> dict[str, Any]:
    """Upsert the document's contents into the org.

    Invalid: 422 with every offending path, and nothing written.
    """
    own, builtin = _visible_definitions(session, org_id)
    problems = import_checks.problems(doc, set(own) | set(builtin))
    if problems:
        raise Invalid(f"import rejected: {len(problems)} problem(s)", details=problems)
    try:
        definitions = _upsert_definitions(session, org_id, doc.definitions, own, now)
        agent_ids, prior, agents = _upsert_agents(session, org_id, doc.agents, now)
        bindings = _upsert_bindings(session, org_id, doc, agent_ids, prior, {**builtin, **own}, now)
        session.flush()
    except (
        IntegrityError,
        psycopg.errors.IntegrityError,
    ) as exc:  # a concurrent import or call created a row first
        raise Conflict(
            "a concurrent change created some of these rows; retry the import",
            code="IMPORT_CONFLICT",
        ) from exc
    return {"org_id": org_id, "definitions": definitions, "agents": agents, "bindings": bindings}
