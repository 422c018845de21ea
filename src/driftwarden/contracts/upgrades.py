"""Upgrade preview and apply: the drift every binding would have at a target version.

docs/reference/resources.md#upgrades

Like the scan, bindings are grouped by bound version in SQL, each distinct version is classified
once against the target, and only the requested items are read, highest severity first.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import false, func, or_, select, update
from sqlalchemy.orm import Session

from driftwarden.agents.models import Agent
from driftwarden.contracts import content as content_rules
from driftwarden.contracts import service, versions
from driftwarden.contracts.configs import check_schema
from driftwarden.contracts.drift import DRIFT_LEVELS, classify
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.contracts.scan import MAX_PAIRS_IN_SQL
from driftwarden.contracts.schemas import ApplyUpgradeRequest, DefinitionRead, UpgradePreviewRequest


def _bound_filter(bounds: list[str | None]) -> Any:
    column = ContractBinding.definition_contract_version
    values = [b for b in bounds if b is not None]
    clauses = ([column.in_(values)] if values else []) + (
        [column.is_(None)] if None in bounds else []
    )
    return or_(*clauses) if clauses else false()


def _bounds_by_level(
    session: Session, where: tuple, target: str
) -> tuple[dict[str, list], dict[str, int]]:
    column = ContractBinding.definition_contract_version
    bounds: dict[str, list[str | None]] = defaultdict(list)
    counts = dict.fromkeys(DRIFT_LEVELS, 0)
    for bound, n in session.execute(select(column, func.count()).where(*where).group_by(column)):
        level = classify(bound, target).drift
        bounds[level].append(bound)
        counts[level] += n
    return bounds, counts


def _level_rows(
    session: Session,
    where: tuple,
    bounds: list[str | None],
    *,
    level: str,
    target: str,
    wanted: int,
) -> list[Any]:
    """Up to `wanted` rows of one level in page order.

    An IN list unless the level has too many versions.
    """
    query = (
        select(
            ContractBinding.id,
            ContractBinding.agent_id,
            Agent.name,
            ContractBinding.enabled,
            ContractBinding.definition_contract_version,
            ContractBinding.config,
        )
        .join(Agent, Agent.id == ContractBinding.agent_id)
        .where(*where)
        .order_by(Agent.name, ContractBinding.id)
    )
    if len(bounds) <= MAX_PAIRS_IN_SQL:
        query = query.where(_bound_filter(bounds)).limit(wanted)
    rows: list[Any] = []
    result = session.execute(query, execution_options={"yield_per": 5000})
    try:
        for row in result:
            if classify(row[4], target).drift == level:
                rows.append(row)
                if len(rows) >= wanted:
                    break
    finally:
        result.close()
    return rows


def _items(
    session: Session,
    where: tuple,
    bounds: dict[str, list],
    counts: dict[str, int],
    *,
    definition: ContractDefinition,
    target: str,
    max_items: int,
    after: content_rules.Content,
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for level in reversed(DRIFT_LEVELS):
        if len(items) >= max_items or not counts[level]:
            continue
        rows = _level_rows(
            session, where, bounds[level], level=level, target=target, wanted=max_items - len(items)
        )
        for binding_id, agent_id, agent_name, enabled, bound, config in rows:
            result = classify(bound, target)
            errors = after.errors(definition.id, config)
            items.append(
                {
                    "config_valid_after": None if errors is None else not errors,
                    "config_errors_after": errors,
                    "binding_id": binding_id,
                    "agent_id": agent_id,
                    "agent_name": agent_name,
                    "enabled": enabled,
                    "bound_contract_version": bound,
                    "current_contract_version": definition.contract_version,
                    "target_contract_version": target,
                    "drift": result.drift,
                    "reason": result.reason,
                }
            )
    return items


def _invalid_after(
    session: Session, where: tuple, definition: ContractDefinition, after: content_rules.Content
) -> int:
    """Bindings whose effective config would fail the target schema: one check per config."""
    if definition.id not in after.definitions:
        return 0
    config = ContractBinding.config
    query = select(config, func.count()).where(*where).group_by(config)
    return sum(n for config, n in session.execute(query) if after.errors(definition.id, config))


def preview(
    session: Session,
    *,
    org_id: uuid.UUID,
    definition: ContractDefinition,
    target: str,
    include_items: bool = True,
    max_items: int = 200,
    content: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What every binding of `definition` in the org would drift to if its version became `target`.

    `content` is the target's config_schema and default_config (default: the definition's own).
    """
    where = (ContractBinding.definition_id == definition.id, ContractBinding.org_id == org_id)
    content = content or {
        "config_schema": definition.config_schema,
        "default_config": definition.default_config,
    }
    schema = content.get("config_schema")
    default = content.get("default_config") or {}
    after = content_rules.Content({} if schema is None else {definition.id: (schema, default)}, {})
    bounds, counts = _bounds_by_level(session, where, target)
    items = (
        _items(
            session,
            where,
            bounds,
            counts,
            definition=definition,
            target=target,
            max_items=max_items,
            after=after,
        )
        if include_items
        else []
    )
    invalid_after = _invalid_after(session, where, definition, after)
    risky = counts["breaking"] or counts["invalid"] or invalid_after
    return {
        "definition_id": definition.id,
        "definition_type": definition.definition_type,
        "definition_key": definition.key,
        "current_contract_version": definition.contract_version,
        "target_contract_version": target,
        "status": "risky" if risky else "safe",
        "binding_count": sum(counts.values()),
        "breaking_count": counts["breaking"],
        "warning_count": counts["warning"],
        "invalid_count": counts["invalid"],
        "unchanged_count": counts["none"],
        "config_invalid_after_count": invalid_after,
        "items": items,
    }


def preview_upgrade(
    session: Session, *, org_id: uuid.UUID, body: UpgradePreviewRequest
) -> dict[str, Any]:
    service.require_version(body.target_contract_version, field="target_contract_version")
    definition = service.get_definition_or_404(
        session, org_id=org_id, definition_id=body.definition_id
    )
    content = target_content(session, definition=definition, body=body)
    check_schema(content.get("config_schema"))
    return preview(
        session,
        org_id=org_id,
        definition=definition,
        target=body.target_contract_version,
        include_items=body.include_items,
        max_items=body.max_items,
        content=content,
    )


def target_content(
    session: Session, *, definition: ContractDefinition, body: UpgradePreviewRequest
) -> dict[str, Any]:
    """The target's content: what the request sets, else the stored target, else the current."""
    given = body.model_dump(include=set(versions.CONTENT) & body.model_fields_set)
    stored = versions.get_version(
        session, definition_id=definition.id, contract_version=body.target_contract_version
    )
    if stored is not None:
        return {**{k: getattr(stored, k) for k in versions.CONTENT}, **given}
    current = versions.get_version(
        session, definition_id=definition.id, contract_version=definition.contract_version
    )
    carried = {
        "config_schema": definition.config_schema,
        "default_config": definition.default_config,
        "changelog": current.changelog if current is not None else None,
    }
    return {**carried, **given}


def _lock_definition(
    session: Session, *, org_id: uuid.UUID, definition_id: uuid.UUID
) -> ContractDefinition:
    """Row-lock the definition so concurrent upgrades of it apply one after the other."""
    service.get_definition_or_404(session, org_id=org_id, definition_id=definition_id)
    definition = session.scalars(
        select(ContractDefinition)
        .where(ContractDefinition.id == definition_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    service.ensure_mutable(definition)
    return definition


def apply_upgrade(
    session: Session,
    *,
    org_id: uuid.UUID,
    body: ApplyUpgradeRequest,
    now: datetime,
    api_key_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Move the definition to the target version.

    With `sync_bindings`, re-bind every binding to it.
    """
    target = service.require_version(body.target_contract_version, field="target_contract_version")
    definition = _lock_definition(session, org_id=org_id, definition_id=body.definition_id)
    previous = definition.contract_version
    content = target_content(session, definition=definition, body=body)
    definition.contract_version, definition.updated_at = target, now
    version = versions.write_version(
        session, definition=definition, content=content, now=now, api_key_id=api_key_id
    )
    definition.config_schema = version.config_schema
    definition.default_config = version.default_config
    updated = 0
    if body.rollout_mode == "sync_bindings":
        column = ContractBinding.definition_contract_version
        result = session.execute(
            update(ContractBinding)
            .where(
                ContractBinding.definition_id == definition.id,
                or_(column.is_(None), column != target),
            )
            .values(definition_contract_version=target, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        updated = result.rowcount or 0
    session.flush()
    after = preview(
        session,
        org_id=org_id,
        definition=definition,
        target=target,
        include_items=body.include_items,
        max_items=body.max_items,
    )
    return {
        "definition": DefinitionRead.of(definition),
        "rollout_mode": body.rollout_mode,
        "previous_contract_version": previous,
        "bindings_updated": updated,
        "preview": after,
    }
