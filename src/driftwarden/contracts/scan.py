"""The drift scan: three statements whatever the number of bindings (one more per extra level).

(docs/reference/resources.md#drift-scan, docs/contracts.md#how-the-scan-reads)

Versions repeat heavily, so SQL groups bindings by (definition, bound version) and counts them,
with the agent count in the same statement (scan_groups.py); each distinct pair is classified
once in Python against the definition's current version (read from the small definitions table,
the classification cached across scans); then only the requested page of items is read, severity
level by level, filtering rows by that level's pairs and ordering and paging in SQL
(scan_page.py).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from driftwarden.contracts import content as content_rules
from driftwarden.contracts import scan_groups
from driftwarden.contracts.drift import DRIFT_LEVELS, levels_at_least
from driftwarden.contracts.models import ContractDefinition
from driftwarden.contracts.scan_page import (
    MAX_PAIRS_IN_SQL,
    Key,
    Pair,
    item_rows,
    probes,
)

__all__ = ["MAX_PAIRS_IN_SQL", "DriftItem", "DriftScan", "scan_drift"]


@dataclass(slots=True)
class DriftItem:
    """One scanned binding with its drift (the docs/reference/resources.md#drift-scan item).

    Not frozen: a frozen dataclass sets each field through object.__setattr__, several times the
    cost of an ordinary one, and a scan builds hundreds.
    """

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
    for definition_id, pairs, agents_in_scope in scan_groups.grouped_rows(session, scope, content):
        agents, current = agents_in_scope, currents.get(definition_id)
        schemed = definition_id in schema_ids
        for bnd, cfg, n, n_enabled in pairs:
            every += n
            counted = n_enabled if scope["enabled_only"] else n
            if not counted:
                continue
            if schemed:
                judged = content.assess(definition_id, bnd, current, cfg)
                groups.append((judged.severity, (definition_id, bnd), cfg))
            else:  # the common case, kept to one cached call: a scan may see thousands of groups
                judged = versions_only(bnd, current)
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
    # The config column to read, only when a definition in scope has a schema.
    config = scan_groups.grouped_config(content).label("config") if content.schema_ids else None
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
        wanted = by_severity[level] if remaining is None else offset + remaining
        probe = probes(by_severity[level], wanted=wanted, scope=scan.checked_binding_count)
        rows = item_rows(
            session,
            scope,
            pairs[level],
            limit=remaining,
            offset=offset,
            configs=configs,
            config=config,
            probe=probe,
        )
        scan.items.extend(_to_item(row, content) for row in rows)
        offset = 0
    return scan
