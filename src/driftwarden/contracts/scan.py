"""The drift scan: a handful of queries whatever the number of bindings.

(docs/reference/resources.md#drift-scan)

Versions repeat heavily, so SQL groups bindings by (definition, bound version) and counts them;
each distinct pair is classified once in Python against the definition's current version (read
from the small definitions table); then only the requested page of items is read, severity level
by level, filtering rows by that level's pairs and ordering in SQL.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import (
    ARRAY,
    Select,
    String,
    and_,
    any_,
    bindparam,
    case,
    false,
    func,
    literal_column,
    null,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from driftwarden.agents.models import Agent
from driftwarden.contracts import content as content_rules
from driftwarden.contracts.drift import DRIFT_LEVELS, levels_at_least
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.db.base import JSONType
from driftwarden.db.helpers import chunked

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


@dataclass(frozen=True)
class DriftItem:
    """One scanned binding with its drift (the docs/reference/resources.md#drift-scan item)."""

    binding_id: uuid.UUID
    agent_id: uuid.UUID
    agent_name: str
    definition_id: uuid.UUID
    definition_type: str
    definition_key: str
    bound_contract_version: str | None
    current_contract_version: str | None
    drift: str
    reason: str
    enabled: bool
    config_valid: bool | None = None
    config_errors: list[dict[str, str]] | None = None
    undeclared_breaking: bool = False
    severity: str = "none"
    # Evidence for promotion, not part of the scan item: the undeclared breaking schema changes.
    schema_changes: list[dict[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The scan item's JSON shape (ids as strings), docs/reference/resources.md#drift-scan.

        Built field by field, as asdict's recursion is slow at scale.
        """
        data = {name: getattr(self, name) for name in ITEM_FIELDS}
        for name in ("binding_id", "agent_id", "definition_id"):
            data[name] = str(data[name])
        return data


ITEM_FIELDS = tuple(f.name for f in fields(DriftItem) if f.name != "schema_changes")


@dataclass
class DriftScan:
    """Counts over every binding in scope, plus the page of items that matched the filters."""

    checked_agent_count: int
    checked_binding_count: int
    counts: dict[str, int]
    total_count: int
    items: list[DriftItem] = field(default_factory=list)
    # Every binding in scope, disabled ones included (differs from checked_binding_count under
    # enabled_only).
    scanned_binding_count: int = 0
    severity_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DRIFT_LEVELS, 0))

    @property
    def breaking_count(self) -> int:
        return self.counts["breaking"]

    @property
    def warning_count(self) -> int:
        return self.counts["warning"]

    @property
    def invalid_count(self) -> int:
        return self.counts["invalid"]


def _scope(
    query: Select,
    *,
    org_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    definition_ids: list[uuid.UUID] | None,
    enabled_only: bool,
) -> Select:
    query = query.where(ContractBinding.org_id == org_id)
    if agent_id is not None:
        query = query.where(ContractBinding.agent_id == agent_id)
    if definition_ids is not None:
        query = query.where(ContractBinding.definition_id.in_(definition_ids))
    if enabled_only:
        query = query.where(ContractBinding.enabled.is_(True))
    return query


def _current_versions(
    session: Session, *, org_id: uuid.UUID, definition_type: str | None
) -> tuple[dict[uuid.UUID, str], content_rules.Content]:
    """Current version of every definition the org can bind (its own and the builtins): a small
    table; with the content (schemas) of those that have a config schema."""
    query = select(
        ContractDefinition.id,
        ContractDefinition.contract_version,
        ContractDefinition.config_schema,
        ContractDefinition.default_config,
    ).where(or_(ContractDefinition.org_id == org_id, ContractDefinition.org_id.is_(None)))
    if definition_type is not None:
        query = query.where(ContractDefinition.definition_type == definition_type)
    rows = session.connection().execute(query).all()
    schemas = {row[0]: (row[2], row[3] or {}) for row in rows if row[2] is not None}
    return {row[0]: row[1] for row in rows}, content_rules.with_versions(session, schemas)


def _grouped_config(content: content_rules.Content) -> Any:
    """The config, for bindings of definitions with a schema only: others group as one."""
    if not content.schema_ids:
        return null()
    in_schema = ContractBinding.definition_id.in_(content.schema_ids)
    return type_coerce(case((in_schema, ContractBinding.config), else_=null()), JSONType)


def _grouped(session: Session, scope: dict[str, Any], content: content_rules.Content) -> Select:
    """(definition, bound, config, count, enabled count, agents) per group; disabled included.

    Ordered like ix_contract_bindings_drift_groups, so Postgres counts in one index-only walk.
    """
    definition, bound = ContractBinding.definition_id, ContractBinding.definition_contract_version
    unfiltered = {**scope, "enabled_only": False}
    if content.schema_ids and session.get_bind().dialect.name == "postgresql":
        return _grouped_by_config_hash(scope, content)
    config = _grouped_config(content).label("config")
    group = (definition, bound) + ((config,) if content.schema_ids else ())
    query = select(definition, bound, config, *_counts(scope)).group_by(*group)
    return _scope(query, **unfiltered)


def _counts(scope: dict[str, Any]) -> tuple[Any, ...]:
    """A group's bindings, its enabled ones, and (the same on every row) the agents in scope."""
    enabled = func.count().filter(ContractBinding.enabled.is_(True))
    return func.count(), enabled, _agent_count(scope).label("agents")


def _grouped_by_config_hash(scope: dict[str, Any], content: content_rules.Content) -> Select:
    """On Postgres, group on a 64-bit hash of the jsonb config (comparing jsonb per row is what
    is slow) and read each group's config once, from one of its rows found by ctid (the same
    snapshot). Two distinct configs of one (definition, bound) pair would have to collide."""
    in_schema = ContractBinding.definition_id.in_(content.schema_ids)
    digest = case((in_schema, func.jsonb_hash_extended(ContractBinding.config, 0)), else_=null())
    columns = (
        ContractBinding.definition_id.label("definition_id"),
        ContractBinding.definition_contract_version.label("bound"),
        digest.label("digest"),
    )
    n, enabled, agents = _counts(scope)
    groups = _scope(
        select(
            *columns,
            n.label("n"),
            enabled.label("enabled"),
            agents,
            func.min(literal_column("contract_bindings.ctid")).label("row"),
        ).group_by(*columns),
        **{**scope, "enabled_only": False},
    ).subquery()
    sample = ContractBinding.__table__.alias("sample")
    config = select(sample.c.config).where(literal_column("sample.ctid") == groups.c.row)
    return select(
        groups.c.definition_id,
        groups.c.bound,
        case((groups.c.digest.is_(None), null()), else_=config.scalar_subquery()),
        groups.c.n,
        groups.c.enabled,
        groups.c.agents,
    )


@dataclass
class _Tally:
    """What the grouped counts add up to, before any item is read."""

    keys: dict[str, list[Key]]
    configs: dict[Key, Any]
    counts: dict[str, int]
    severity_counts: dict[str, int]
    every: int = 0
    agents: int = 0


def _tally(
    session: Session,
    scope: dict[str, Any],
    currents: dict[uuid.UUID, str],
    content: content_rules.Content,
) -> _Tally:
    """Group the scope by (definition, bound, config) in SQL; judge each group once.

    Levels are severities; `counts` is by version drift, `severity_counts` by severity. Levels count
    enabled bindings only under `enabled_only`; `every` counts every binding in scope, disabled
    ones too (they are scanned, just never promoted), at no extra statement.
    """
    groups: list[tuple[str, Pair, Any]] = []  # of definitions with a schema: configs matter
    plain: dict[str, list[Key]] = defaultdict(list)  # of the others: one row per pair
    counts = dict.fromkeys(DRIFT_LEVELS, 0)
    severity_counts = dict.fromkeys(DRIFT_LEVELS, 0)
    every = agents = 0
    schema_ids = set(content.schema_ids)
    versions_only = content_rules.versions_only
    rows = session.connection().execute(_grouped(session, scope, content))
    for definition_id, bnd, cfg, n, n_enabled, agents_in_scope in rows:
        every, agents = every + n, agents_in_scope
        counted = n_enabled if scope["enabled_only"] else n
        if not counted:
            continue
        if definition_id in schema_ids:
            judged = content.assess(definition_id, bnd, currents.get(definition_id), cfg)
            groups.append((judged.severity, (definition_id, bnd), cfg))
        else:  # the common case, kept to one cached call: a scan may see thousands of groups
            judged = versions_only(bnd, currents.get(definition_id))
            plain[judged.severity].append((definition_id, bnd, None))
        counts[judged.drift] += counted
        severity_counts[judged.severity] += counted
    keys, configs = _keys_by_level(groups)
    for level, level_keys in plain.items():
        keys[level].extend(level_keys)
    return _Tally(keys, configs, counts, severity_counts, every, agents)


def _keys_by_level(
    groups: list[tuple[str, Pair, Any]],
) -> tuple[dict[str, list[Key]], dict[Key, Any]]:
    """A pair whose configs all land in one level needs no config in its key; the others do."""
    levels_of: dict[Pair, set[str]] = defaultdict(set)
    for level, pair, _ in groups:
        levels_of[pair].add(level)
    keys: dict[str, dict[Key, None]] = defaultdict(dict)  # ordered set: enabled and disabled
    configs: dict[Key, Any] = {}
    for level, pair, cfg in groups:
        mixed = len(levels_of[pair]) > 1
        key = (*pair, content_rules.config_key(cfg) if mixed else None)
        keys[level][key] = None
        if mixed:
            configs[key] = cfg
    return defaultdict(list, {level: list(ks) for level, ks in keys.items()}), configs


def _agent_count(scope: dict[str, Any]) -> Any:
    """Agents with a binding in scope, as a scalar subquery: one more column, not one more trip.

    DISTINCT in a subquery walks the (org_id, agent_id) index where count(DISTINCT) would sort.
    """
    distinct_agents = _scope(select(ContractBinding.agent_id), **scope).distinct().subquery()
    return select(func.count()).select_from(distinct_agents).scalar_subquery()


def _bound_in(values: list[str], *, as_array: bool) -> Any:
    """`bound IN (...)`; on Postgres `= ANY(array)`, one parameter whatever the number of values.

    A short statement text keeps psycopg's query cache (and SQLAlchemy's) hitting; an IN list of
    hundreds of placeholders is re-parsed on every execution.
    """
    bound = ContractBinding.definition_contract_version
    if as_array:
        return bound == any_(bindparam(None, values, type_=ARRAY(String())))
    return bound.in_(values)


def _pair_filter(pairs: list[Pair], *, as_array: bool = False) -> Any:
    """SQL condition matching rows whose (definition, bound version) is one of `pairs`."""
    by_definition: dict[uuid.UUID, set[str | None]] = defaultdict(set)
    for definition_id, bnd in pairs:
        by_definition[definition_id].add(bnd)
    bound = ContractBinding.definition_contract_version
    clauses = []
    for definition_id, bounds in by_definition.items():
        values = sorted(b for b in bounds if b is not None)
        matches = [_bound_in(values, as_array=as_array)] if values else []
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


def _item_rows(
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
    as_array = session.get_bind().dialect.name == "postgresql"
    clauses = [_pair_filter(whole, as_array=as_array)] + [
        and_(_pair_filter([pair], as_array=as_array), ContractBinding.config.in_(configs))
        for pair, configs in partial.items()
    ]
    query = _joined(scope["org_id"], *ITEM_COLUMNS, config).where(or_(*clauses))
    query = query.order_by(*ITEM_ORDER).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.connection().execute(_scope(query, **scope)))


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
    stream = _scope(
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


def _to_item(row: Any, content: content_rules.Content) -> DriftItem:
    judged = content.assess(row[3], row[6], row[7], row[9])
    return DriftItem(
        binding_id=row[0],
        agent_id=row[1],
        agent_name=row[2],
        definition_id=row[3],
        definition_type=row[4],
        definition_key=row[5],
        bound_contract_version=row[6],
        current_contract_version=row[7],
        drift=judged.drift,
        reason=judged.reason,
        enabled=row[8],
        config_valid=judged.config_valid,
        config_errors=judged.config_errors,
        undeclared_breaking=judged.undeclared_breaking,
        severity=judged.severity,
        schema_changes=judged.schema_changes,
    )


def included_levels(min_drift: str, include_healthy: bool) -> list[str]:
    """Levels a scan returns as items, highest severity first."""
    healthy = ["none"] if include_healthy and min_drift != "none" else []
    return [*levels_at_least(min_drift), *healthy]


def scan_drift(
    session: Session,
    *,
    org_id: uuid.UUID,
    agent_id: uuid.UUID | None = None,
    definition_type: str | None = None,
    min_drift: str = "warning",
    include_healthy: bool = False,
    enabled_only: bool = False,
    limit: int | None = 200,
    offset: int = 0,
) -> DriftScan:
    """Scan every binding in scope; `limit=None` returns all matching items."""
    currents, content = _current_versions(session, org_id=org_id, definition_type=definition_type)
    scope = {
        "org_id": org_id,
        "agent_id": agent_id,
        "enabled_only": enabled_only,
        "definition_ids": None if definition_type is None else list(currents),
    }
    tally = _tally(session, scope, currents, content)
    pairs, configs, by_severity = tally.keys, tally.configs, tally.severity_counts
    levels = included_levels(min_drift, include_healthy)
    scan = DriftScan(
        checked_agent_count=tally.agents,
        checked_binding_count=sum(tally.counts.values()),
        counts=tally.counts,
        total_count=sum(by_severity[lvl] for lvl in levels),
        scanned_binding_count=tally.every,
        severity_counts=by_severity,
    )
    for level in levels:
        if limit is not None and len(scan.items) >= limit:
            break
        if offset >= by_severity[level]:
            offset -= by_severity[level]
            continue
        remaining = None if limit is None else limit - len(scan.items)
        rows = _item_rows(
            session,
            scope,
            pairs[level],
            limit=remaining,
            offset=offset,
            configs=configs,
            config=_grouped_config(content).label("config"),
        )
        scan.items.extend(_to_item(row, content) for row in rows)
        offset = 0
    return scan
