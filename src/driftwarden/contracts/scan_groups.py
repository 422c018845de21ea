"""The drift scan's grouped count: bindings per (definition, bound version[, config]) in scope.

(docs/contracts.md#how-the-scan-reads) One statement, with the number of agents in scope as a
scalar subquery column; on Postgres an index-only walk of ix_contract_bindings_drift_groups.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from itertools import groupby, repeat
from operator import itemgetter
from typing import Any

from sqlalchemy import Select, case, func, literal_column, null, select, type_coerce
from sqlalchemy.orm import Session

from driftwarden.contracts import content as content_rules
from driftwarden.contracts.models import ContractBinding
from driftwarden.contracts.scan_page import (
    built_once,
    scope_filter,
    scope_params,
    scope_shape,
    template_scope,
)
from driftwarden.db.base import JSONType


def grouped_config(content: content_rules.Content) -> Any:
    """The config, for bindings of definitions with a schema only: others group as one."""
    if not content.schema_ids:
        return null()
    in_schema = ContractBinding.definition_id.in_(content.schema_ids)
    return type_coerce(case((in_schema, ContractBinding.config), else_=null()), JSONType)


def _grouped(session: Session, scope: dict[str, Any], content: content_rules.Content) -> Select:
    """(definition, bound, config, count, enabled count, agents) per group; disabled included.

    Ordered like ix_contract_bindings_drift_groups, so Postgres counts in one index-only walk.
    """
    if not content.schema_ids:
        return _grouped_plain(scope)
    if session.get_bind().dialect.name == "postgresql":
        return _grouped_by_config_hash(scope, content)
    definition, bound = ContractBinding.definition_id, ContractBinding.definition_contract_version
    config = grouped_config(content).label("config")
    query = select(definition, bound, config, *_counts(scope)).group_by(definition, bound, config)
    return scope_filter(query, **{**scope, "enabled_only": False})


def _grouped_plain(scope: dict[str, Any]) -> Select:
    """The groups when no definition has a schema: (definition, bound) only."""
    definition, bound = ContractBinding.definition_id, ContractBinding.definition_contract_version
    n, enabled, agents = _counts(scope)
    query = select(
        definition.label("definition_id"),
        bound.label("bound"),
        null().label("config"),
        n.label("n"),
        enabled.label("enabled"),
        agents,
    ).group_by(definition, bound)
    return scope_filter(query, **{**scope, "enabled_only": False})


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
    groups = scope_filter(
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


def _agent_count(scope: dict[str, Any]) -> Any:
    """Agents with a binding in scope, as a scalar subquery: one more column, not one more trip.

    DISTINCT in a subquery walks the (org_id, agent_id) index where count(DISTINCT) would sort.
    """
    distinct_agents = scope_filter(select(ContractBinding.agent_id), **scope).distinct().subquery()
    return select(func.count()).select_from(distinct_agents).scalar_subquery()


def grouped_rows(
    session: Session, scope: dict[str, Any], content: content_rules.Content
) -> Iterator[tuple[uuid.UUID, Iterable[tuple[Any, ...]], int]]:
    """(definition, its groups as (bound, config, count, enabled count), agents in scope).

    On Postgres, when no definition has a schema, one row per definition carries its groups as
    arrays: a few rows to decode instead of one per distinct bound version.
    """
    if not content.schema_ids and session.get_bind().dialect.name == "postgresql":
        query = built_once(
            _PER_DEFINITION,
            scope_shape(scope),
            lambda: _grouped_per_definition(template_scope(scope)),
        )
        rows = session.connection().execute(query, scope_params(scope)).all()
        for definition_id, bounds, totals, enabled, agents in rows:
            configs = repeat(None, len(bounds))
            yield definition_id, zip(bounds, configs, totals, enabled, strict=True), agents
        return
    # .all() fetches in one call; iterating a result fetches row by row (psycopg's fetchone).
    rows = session.connection().execute(_grouped(session, scope, content)).all()
    for definition_id, batch in groupby(rows, key=itemgetter(0)):
        groups = [row[1:5] for row in batch]
        yield definition_id, groups, rows[0][5]


# _grouped_per_definition built once per scope shape, its values bound at each execution.
_PER_DEFINITION: dict[tuple[bool, bool, bool], Select] = {}


def _grouped_per_definition(scope: dict[str, Any]) -> Select:
    """_grouped's groups gathered per definition into arrays (one pass: the arrays align)."""
    groups = _grouped_plain(scope).subquery()
    return select(
        groups.c.definition_id,
        func.array_agg(groups.c.bound),
        func.array_agg(groups.c.n),
        func.array_agg(groups.c.enabled),
        func.min(groups.c.agents),
    ).group_by(groups.c.definition_id)
