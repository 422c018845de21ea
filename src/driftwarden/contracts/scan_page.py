"""The drift scan's page: the rows of one severity level, in page order, read in SQL.

(docs/contracts.md#how-the-scan-reads) Rows are filtered by the level's (definition, bound[,
config]) keys, which the scan's grouped count found and classified, or picked from an ordered
stream of ids when a level has too many keys for one statement.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    ARRAY,
    Select,
    String,
    Uuid,
    and_,
    bindparam,
    case,
    column,
    false,
    func,
    null,
    or_,
    select,
    true,
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
# Dialects where a level's pairs can be probed one by one from unnest(uuid[], varchar[]).
ARRAY_DIALECTS = frozenset({"postgresql"})
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


def scope_shape(scope: dict[str, Any]) -> tuple[bool, bool, bool]:
    """What decides a scoped statement's structure: which filters it has, not their values."""
    return scope["agent_id"] is not None, scope["definition_ids"] is not None, scope["enabled_only"]


def template_scope(scope: dict[str, Any]) -> dict[str, Any]:
    """`scope` with bind parameters in place of its values: a statement built once from it
    serves every scope of the same shape, given scope_params(scope) at each execution. The
    parameters have no value, so an execution that leaves one out fails instead of reusing one."""
    return {
        "org_id": bindparam("scope_org_id"),
        "agent_id": None if scope["agent_id"] is None else bindparam("scope_agent_id"),
        "definition_ids": (
            None
            if scope["definition_ids"] is None
            else bindparam("scope_definition_ids", expanding=True)
        ),
        "enabled_only": scope["enabled_only"],
    }


def built_once(cache: dict[Any, Select], shape: Any, build: Callable[[], Select]) -> Select:
    """The statement cached for `shape`, built (from a template_scope) the first time."""
    query = cache.get(shape)
    return query if query is not None else cache.setdefault(shape, build())


def scope_params(scope: dict[str, Any]) -> dict[str, Any]:
    """The values of template_scope(scope)'s parameters."""
    params: dict[str, Any] = {"scope_org_id": scope["org_id"]}
    if scope["agent_id"] is not None:
        params["scope_agent_id"] = scope["agent_id"]
    if scope["definition_ids"] is not None:
        params["scope_definition_ids"] = list(scope["definition_ids"])
    return params


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


def probes(matching: int, *, wanted: int, scope: int) -> bool:
    """Whether to find a level's rows pair by pair and sort them, rather than walk the agents.

    Walking agents in name order reads about `wanted * scope / matching` bindings before the
    page is full; probing reads the `matching` ones, each costing a few index steps and its share
    of the sort (hence the factor, measured at 10 000 bindings on Postgres).
    """
    return 4 * matching * matching < wanted * scope


def item_rows(
    session: Session,
    scope: dict[str, Any],
    keys: list[Key],
    *,
    limit: int | None,
    offset: int,
    configs: dict[Key, Any],
    config: Any,
    probe: bool = False,
) -> list[Any]:
    """The level's rows in page order: filtered by its pairs in SQL, or picked from a stream.

    A stream when the level has too many pairs, or when configs decide it (schema'd definitions).
    With `probe` (a level holding little of the scope) its pairs are probed one by one instead.
    `config` is the config column to read, or None when no definition in scope has a schema.
    """
    column = null().label("config") if config is None else config
    if len(keys) > MAX_PAIRS_IN_SQL:
        return _item_rows_streamed(
            session, scope, set(keys), limit=limit, offset=offset, config=column
        )
    dialect_name = session.get_bind().dialect.name
    if probe and dialect_name in ARRAY_DIALECTS and all(k[2] is None for k in keys):
        query, params = _probed_page(scope, keys, config, limit=limit, offset=offset)
        return session.connection().execute(query, params).all()
    query = _filtered(scope, keys, configs, column, dialect_name=dialect_name)
    query = query.offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return session.connection().execute(query).all()


# The probed page of a scan without config schemas, built once per scope shape and whether the
# page is limited: building it is most of a small scan's Python.
_PROBED_PAGES: dict[tuple[tuple[bool, bool, bool], bool], Select] = {}


def _probed_page(
    scope: dict[str, Any], keys: list[Key], config: Any, *, limit: int | None, offset: int
) -> tuple[Select, dict[str, Any]]:
    """The probed page's statement and its parameters (a built one reused when it can be)."""
    limited = limit is not None
    params = {
        "probe_definition_ids": [k[0] for k in keys],
        "probe_bounds": [k[1] for k in keys],
        "page_offset": offset,
    }
    if limited:
        params["page_limit"] = limit
    if config is not None:
        return _paged(_probed(scope, config), limited=limited), params
    query = built_once(
        _PROBED_PAGES,
        (scope_shape(scope), limited),
        lambda: _paged(_probed(template_scope(scope), null().label("config")), limited=limited),
    )
    return query, params | scope_params(scope)


def _paged(query: Select, *, limited: bool) -> Select:
    query = query.offset(bindparam("page_offset"))
    return query.limit(bindparam("page_limit")) if limited else query


def _filtered(
    scope: dict[str, Any],
    keys: list[Key],
    configs: dict[Key, Any],
    config: Any,
    *,
    dialect_name: str,
) -> Select:
    """The org's agents walked in name order, their bindings filtered by the level's keys."""
    whole = [(k[0], k[1]) for k in keys if k[2] is None]
    partial: dict[Pair, list[Any]] = defaultdict(list)
    for k in keys:
        if k[2] is not None:
            partial[(k[0], k[1])].append(configs[k])
    clauses = [_pair_filter(whole, dialect_name=dialect_name)] + [
        and_(_pair_filter([pair], dialect_name=dialect_name), ContractBinding.config.in_(configs))
        for pair, configs in partial.items()
    ]
    query = _joined(scope["org_id"], *ITEM_COLUMNS, config).where(or_(*clauses))
    return scope_filter(query.order_by(*ITEM_ORDER), **scope)


def _probed(scope: dict[str, Any], config: Any) -> Select:
    """Each pair's bindings found through ix_contract_bindings_drift_groups, then sorted.

    The pairs are two array parameters (`probe_definition_ids`, `probe_bounds`), unnested;
    `OFFSET 0` keeps the lateral subquery from being flattened into a join, which Postgres would
    plan as a hash over every binding.
    """
    table = (
        func.unnest(
            bindparam("probe_definition_ids", type_=ARRAY(Uuid())),
            bindparam("probe_bounds", type_=ARRAY(String())),
        )
        .table_valued(column("definition_id", Uuid()), column("bound", String()))
        .render_derived()
    )
    bound = ContractBinding.definition_contract_version
    same_bound = or_(bound == table.c.bound, and_(table.c.bound.is_(None), bound.is_(None)))
    hit = select(
        ContractBinding.id,
        ContractBinding.agent_id,
        ContractBinding.definition_id,
        bound,
        ContractBinding.enabled,
        config,
    ).where(ContractBinding.definition_id == table.c.definition_id, same_bound)
    hits = scope_filter(hit, **scope).offset(0).lateral("hits")
    return (
        select(
            hits.c.id,
            hits.c.agent_id,
            Agent.name,
            hits.c.definition_id,
            ContractDefinition.definition_type,
            ContractDefinition.key,
            hits.c.definition_contract_version,
            ContractDefinition.contract_version,
            hits.c.enabled,
            hits.c.config,
        )
        .select_from(table)
        .join(hits, true())
        .join(Agent, Agent.id == hits.c.agent_id)
        .join(ContractDefinition, ContractDefinition.id == hits.c.definition_id)
        .order_by(Agent.name, ContractDefinition.key, hits.c.id)
    )


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
