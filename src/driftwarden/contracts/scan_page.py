"""The drift scan's page: the rows of one severity level, in page order, read in SQL.

(docs/contracts.md#how-the-scan-reads) Rows are filtered by the level's (definition, bound[,
config]) keys, which the scan's grouped count found and classified, or picked from an ordered
stream of ids when a level has too many keys for one statement.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    case,
    false,
    null,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from driftwarden.agents.models import Agent
from driftwarden.contracts import content as content_rules
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.db.base import JSONType
from driftwarden.db.helpers import chunked, in_strings

Pair = tuple[uuid.UUID, str | None]  # (definition id, bound version)
# (definition id, bound version, config key or None when the definition has no schema)
Key = tuple[uuid.UUID, str | None, str | None]
# Beyond this many distinct pairs in one level, an IN list would be huge: pick the page from a
# stream.
MAX_PAIRS_IN_SQL = 1000
ITEM_COLUMNS = (
    ContractBinding.id,
    ContractBinding.agent_id,
    Agent.name,
    ContractBinding.definition_id,
    ContractDefinition.definition_type,
    ContractDefinition.key,
    ContractBinding.definition_contract_version,
    ContractDefinition.contract_version,
    ContractBinding.enabled,
)  # then the config, for definitions with a schema only (no JSON decoded for the others)
ITEM_ORDER = (Agent.name, ContractDefinition.key, ContractBinding.id)


def scope_filter(
    query: Select,
    *,
    org_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    definition_ids: list[uuid.UUID] | None,
    enabled_only: bool,
) -> Select:
    """The scan's scope on a query over bindings (every statement of a scan applies the same)."""
    query = query.where(ContractBinding.org_id == org_id)
    if agent_id is not None:
        query = query.where(ContractBinding.agent_id == agent_id)
    if definition_ids is not None:
        query = query.where(ContractBinding.definition_id.in_(definition_ids))
    if enabled_only:
        query = query.where(ContractBinding.enabled.is_(True))
    return query


def _pair_filter(pairs: list[Pair], *, dialect_name: str) -> Any:
    """SQL condition matching rows whose (definition, bound version) is one of `pairs`."""
    by_definition: dict[uuid.UUID, set[str | None]] = defaultdict(set)
    for definition_id, bnd in pairs:
        by_definition[definition_id].add(bnd)
    bound = ContractBinding.definition_contract_version
    clauses = []
    for definition_id, bounds in by_definition.items():
        values = sorted(b for b in bounds if b is not None)
        matches = [in_strings(bound, values, dialect_name=dialect_name)] if values else []
        if None in bounds:
            matches.append(bound.is_(None))
        clauses.append(and_(ContractBinding.definition_id == definition_id, or_(*matches)))
    return or_(*clauses) if clauses else false()


def _joined(org_id: uuid.UUID, *columns: Any) -> Select:
    """Bindings with their agent and definition, driven from the org's agents.

    Filtering agents by org lets Postgres walk ix_agents_org_id_name_id in page order, then each
    agent's bindings, and stop at LIMIT (an incremental sort orders one agent name at a time).
    """
    return (
        select(*columns)
        .select_from(Agent)
        .join(ContractBinding, ContractBinding.agent_id == Agent.id)
        .join(ContractDefinition, ContractDefinition.id == ContractBinding.definition_id)
        .where(Agent.org_id == org_id)
    )


def item_rows(
    session: Session,
    scope: dict[str, Any],
    keys: list[Key],
    *,
    limit: int | None,
    offset: int,
    configs: dict[Key, Any],
    config: Any,
) -> list[Any]:
    """The level's rows in page order: filtered by its pairs in SQL, or picked from a stream.

    A stream when the level has too many pairs, or when configs decide it (schema'd definitions).
    """
    if len(keys) > MAX_PAIRS_IN_SQL:
        return _item_rows_streamed(
            session, scope, set(keys), limit=limit, offset=offset, config=config
        )
    whole = [(k[0], k[1]) for k in keys if k[2] is None]
    partial: dict[Pair, list[Any]] = defaultdict(list)
    for k in keys:
        if k[2] is not None:
            partial[(k[0], k[1])].append(configs[k])
    dialect_name = session.get_bind().dialect.name
    clauses = [_pair_filter(whole, dialect_name=dialect_name)] + [
        and_(_pair_filter([pair], dialect_name=dialect_name), ContractBinding.config.in_(configs))
        for pair, configs in partial.items()
    ]
    query = _joined(scope["org_id"], *ITEM_COLUMNS, config).where(or_(*clauses))
    query = query.order_by(*ITEM_ORDER).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return session.connection().execute(scope_filter(query, **scope)).all()


def _item_rows_streamed(
    session: Session,
    scope: dict[str, Any],
    keys: set[Key],
    *,
    limit: int | None,
    offset: int,
    config: Any,
) -> list[Any]:
    """For levels with many distinct versions or config-decided keys: walk the ordered ids."""
    with_config = {k[0] for k in keys if k[2] is not None}
    in_config = ContractBinding.definition_id.in_(with_config)
    keyed_config = (
        type_coerce(case((in_config, ContractBinding.config), else_=null()), JSONType)
        if with_config
        else null()
    )
    stream = scope_filter(
        _joined(
            scope["org_id"],
            ContractBinding.id,
            ContractBinding.definition_id,
            ContractBinding.definition_contract_version,
            keyed_config,
        ).order_by(*ITEM_ORDER),
        **scope,
    )
    ids: list[uuid.UUID] = []
    result = session.execute(stream, execution_options={"yield_per": 5000})
    try:
        for binding_id, definition_id, bound, cfg in result:
            if (definition_id, bound, None) not in keys and (
                definition_id not in with_config
                or (definition_id, bound, content_rules.config_key(cfg)) not in keys
            ):
                continue
            if offset:
                offset -= 1
                continue
            ids.append(binding_id)
            if limit is not None and len(ids) >= limit:
                break
    finally:
        result.close()
    rows: dict[uuid.UUID, Any] = {}
    for chunk in chunked(ids):
        query = _joined(scope["org_id"], *ITEM_COLUMNS, config)
        query = query.where(ContractBinding.id.in_(chunk))
        rows.update((row[0], row) for row in session.execute(query))
    return [rows[binding_id] for binding_id in ids]
