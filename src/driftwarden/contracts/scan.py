"""The drift scan (SPEC §4.5): a handful of queries whatever the number of bindings.

Versions repeat heavily, so SQL groups bindings by (current, bound) pair and counts them; each
distinct pair is classified once in Python; then only the requested page of items is read,
severity level by level, filtering rows by that level's pairs and ordering in SQL.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import Select, and_, false, func, or_, select
from sqlalchemy.orm import Session

from driftwarden.agents.models import Agent
from driftwarden.contracts.drift import DRIFT_LEVELS, SEVERITY, classify
from driftwarden.contracts.models import ContractBinding, ContractDefinition

Pair = tuple[str | None, str | None]  # (current, bound)


@dataclass(frozen=True)
class DriftItem:
    """One scanned binding with its drift (the §4.5 item)."""

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

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of §4.5 (ids as strings); field by field, as asdict's recursion is slow at scale."""
        data = {name: getattr(self, name) for name in ITEM_FIELDS}
        for name in ("binding_id", "agent_id", "definition_id"):
            data[name] = str(data[name])
        return data


ITEM_FIELDS = tuple(f.name for f in fields(DriftItem))


@dataclass
class DriftScan:
    """Counts over every binding in scope, plus the page of items that matched the filters."""

    checked_agent_count: int
    checked_binding_count: int
    counts: dict[str, int]
    total_count: int
    items: list[DriftItem] = field(default_factory=list)

    @property
    def breaking_count(self) -> int:
        return self.counts["breaking"]

    @property
    def warning_count(self) -> int:
        return self.counts["warning"]

    @property
    def invalid_count(self) -> int:
        return self.counts["invalid"]


def _scope(query: Select, *, org_id: uuid.UUID, agent_id: uuid.UUID | None, definition_type: str | None,
           enabled_only: bool) -> Select:
    query = query.where(ContractBinding.org_id == org_id)
    if agent_id is not None:
        query = query.where(ContractBinding.agent_id == agent_id)
    if definition_type is not None:
        query = query.where(ContractDefinition.definition_type == definition_type)
    if enabled_only:
        query = query.where(ContractBinding.enabled.is_(True))
    return query


def _pairs_by_level(session: Session, scope: dict[str, Any]) -> tuple[dict[str, list[Pair]], dict[str, int]]:
    """Group the scope by version pair in SQL; classify each distinct pair once."""
    current, bound = ContractDefinition.contract_version, ContractBinding.definition_contract_version
    query = (select(current, bound, func.count()).select_from(ContractBinding)
             .join(ContractDefinition, ContractDefinition.id == ContractBinding.definition_id)
             .group_by(current, bound))
    pairs: dict[str, list[Pair]] = defaultdict(list)
    counts = dict.fromkeys(DRIFT_LEVELS, 0)
    for cur, bnd, n in session.execute(_scope(query, **scope)):
        level = classify(bnd, cur).drift
        pairs[level].append((cur, bnd))
        counts[level] += n
    return pairs, counts


def _agent_count(session: Session, scope: dict[str, Any]) -> int:
    query = (select(func.count(func.distinct(ContractBinding.agent_id))).select_from(ContractBinding)
             .join(ContractDefinition, ContractDefinition.id == ContractBinding.definition_id))
    return session.scalar(_scope(query, **scope)) or 0


def _pair_filter(pairs: list[Pair]):  # type: ignore[no-untyped-def]
    """SQL condition matching rows whose (current, bound) pair is one of `pairs`."""
    by_current: dict[str | None, set[str | None]] = defaultdict(set)
    for cur, bnd in pairs:
        by_current[cur].add(bnd)
    bound = ContractBinding.definition_contract_version
    clauses = []
    for cur, bounds in by_current.items():
        values = sorted(b for b in bounds if b is not None)
        matches = [bound.in_(values)] if values else []
        if None in bounds:
            matches.append(bound.is_(None))
        current = ContractDefinition.contract_version
        clauses.append(and_(current.is_(None) if cur is None else current == cur, or_(*matches)))
    return or_(*clauses) if clauses else false()


def _item_rows(session: Session, scope: dict[str, Any], pairs: list[Pair], *, limit: int | None,
               offset: int) -> list[Any]:
    query = (select(ContractBinding.id, ContractBinding.agent_id, Agent.name, ContractBinding.definition_id,
                    ContractDefinition.definition_type, ContractDefinition.key,
                    ContractBinding.definition_contract_version, ContractDefinition.contract_version,
                    ContractBinding.enabled)
             .select_from(ContractBinding)
             .join(ContractDefinition, ContractDefinition.id == ContractBinding.definition_id)
             .join(Agent, Agent.id == ContractBinding.agent_id)
             .where(_pair_filter(pairs))
             .order_by(Agent.name, ContractDefinition.key, ContractBinding.id)
             .offset(offset))
    if limit is not None:
        query = query.limit(limit)
    return list(session.execute(_scope(query, **scope)))


def _to_item(row: Any) -> DriftItem:
    result = classify(row[6], row[7])
    return DriftItem(binding_id=row[0], agent_id=row[1], agent_name=row[2], definition_id=row[3],
                     definition_type=row[4], definition_key=row[5], bound_contract_version=row[6],
                     current_contract_version=row[7], drift=result.drift, reason=result.reason, enabled=row[8])


def included_levels(min_drift: str, include_healthy: bool) -> list[str]:
    """Levels a scan returns as items, highest severity first."""
    floor = SEVERITY[min_drift]
    return [lvl for lvl in reversed(DRIFT_LEVELS)
            if (SEVERITY[lvl] >= floor and lvl != "none") or (lvl == "none" and (include_healthy or floor == 0))]


def scan_drift(session: Session, *, org_id: uuid.UUID, agent_id: uuid.UUID | None = None,
               definition_type: str | None = None, min_drift: str = "warning", include_healthy: bool = False,
               enabled_only: bool = False, limit: int | None = 200, offset: int = 0) -> DriftScan:
    """Scan every binding in scope; `limit=None` returns all matching items."""
    scope = {"org_id": org_id, "agent_id": agent_id, "definition_type": definition_type,
             "enabled_only": enabled_only}
    pairs, counts = _pairs_by_level(session, scope)
    levels = included_levels(min_drift, include_healthy)
    scan = DriftScan(checked_agent_count=_agent_count(session, scope), checked_binding_count=sum(counts.values()),
                     counts=counts, total_count=sum(counts[lvl] for lvl in levels))
    for level in levels:
        if limit is not None and len(scan.items) >= limit:
            break
        if offset >= counts[level]:
            offset -= counts[level]
            continue
        remaining = None if limit is None else limit - len(scan.items)
        rows = _item_rows(session, scope, pairs[level], limit=remaining, offset=offset)
        scan.items.extend(_to_item(row) for row in rows)
        offset = 0
    return scan
