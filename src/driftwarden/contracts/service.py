"""Contract definitions and bindings. Callers own the transaction: these functions add and flush."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from driftwarden.agents import service as agents_service
from driftwarden.contracts import content as content_rules
from driftwarden.contracts import versions
from driftwarden.contracts.configs import check_schema
from driftwarden.contracts.drift import classify, is_valid_version
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.contracts.scan import DriftItem, DriftScan, scan_drift
from driftwarden.contracts.schemas import (
    BindingCreate,
    BindingRead,
    DefinitionCreate,
    DefinitionUpdate,
)
from driftwarden.db.helpers import insert_or_conflict
from driftwarden.errors import Conflict, Forbidden, Invalid, NotFound

__all__ = ["DriftItem", "DriftScan", "scan_drift"]


def require_version(value: str, *, field: str) -> str:
    """422 CONTRACT_VERSION_INVALID unless `value` is SemVer 2.0.0."""
    if not is_valid_version(value):
        raise Invalid(
            f"{value!r} is not a valid SemVer 2.0.0 version",
            code="CONTRACT_VERSION_INVALID",
            details=[
                {
                    "loc": ["body", field],
                    "msg": "not a valid SemVer 2.0.0 version",
                    "type": "semver",
                }
            ],
        )
    return value


def visible_to(org_id: uuid.UUID) -> Any:
    """Definitions an org may see and bind: its own and the builtins."""
    return or_(ContractDefinition.org_id == org_id, ContractDefinition.org_id.is_(None))


def get_definition(
    session: Session, *, org_id: uuid.UUID, definition_id: uuid.UUID
) -> ContractDefinition | None:
    definition = session.get(ContractDefinition, definition_id)
    if definition is None or definition.org_id not in (None, org_id):
        return None
    return definition


def get_definition_or_404(
    session: Session, *, org_id: uuid.UUID, definition_id: uuid.UUID
) -> ContractDefinition:
    definition = get_definition(session, org_id=org_id, definition_id=definition_id)
    if definition is None:
        raise NotFound("contract definition not found", code="CONTRACT_DEFINITION_NOT_FOUND")
    return definition


def ensure_mutable(definition: ContractDefinition) -> None:
    """Builtins are shared by every org, so no org may change them through the API."""
    if definition.org_id is None:
        raise Forbidden(
            "builtin contract definitions cannot be changed",
            code="CONTRACT_DEFINITION_IMMUTABLE",
            details={"definition_id": str(definition.id), "builtin": True},
        )


def list_definitions(
    session: Session,
    *,
    org_id: uuid.UUID,
    definition_type: str | None,
    include_builtin: bool,
    active_only: bool,
    limit: int,
    offset: int,
) -> tuple[list[ContractDefinition], int]:
    query = select(ContractDefinition).where(
        visible_to(org_id) if include_builtin else ContractDefinition.org_id == org_id
    )
    if definition_type is not None:
        query = query.where(ContractDefinition.definition_type == definition_type)
    if active_only:
        query = query.where(ContractDefinition.is_active.is_(True))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    order = (
        ContractDefinition.definition_type,
        ContractDefinition.key,
        ContractDefinition.org_id.is_(None),
        ContractDefinition.id,
    )
    return list(session.scalars(query.order_by(*order).limit(limit).offset(offset))), total


def create_definition(
    session: Session,
    *,
    org_id: uuid.UUID | None,
    body: DefinitionCreate,
    now: datetime,
    api_key_id: uuid.UUID | None = None,
) -> ContractDefinition:
    """`org_id=None` creates a builtin; the route decides who may. Writes the first version too."""
    require_version(body.contract_version, field="contract_version")
    check_schema(body.config_schema)
    definition = ContractDefinition(
        org_id=org_id,
        definition_type=body.definition_type,
        key=body.key,
        name=body.name,
        description=body.description,
        contract_version=body.contract_version,
        default_config=body.default_config,
        is_active=True,
        created_at=now,
        updated_at=now,
    )
    definition.config_schema = body.config_schema
    insert_or_conflict(
        session,
        definition,
        code="CONTRACT_DEFINITION_EXISTS",
        message=f"a {body.definition_type} definition with key {body.key!r} already exists",
        details={"definition_type": body.definition_type, "key": body.key},
    )
    versions.write_version(
        session,
        definition=definition,
        now=now,
        api_key_id=api_key_id,
        content=body.model_dump(include=set(versions.CONTENT)),
    )
    return definition


def update_definition(
    session: Session, *, definition: ContractDefinition, body: DefinitionUpdate, now: datetime
) -> ContractDefinition:
    ensure_mutable(definition)
    changes = body.model_dump(exclude_unset=True)
    for field in ("name", "is_active"):
        if field in changes and changes[field] is None:
            raise Invalid.for_field(field, "may not be null")
    for field, value in changes.items():
        setattr(definition, field, {} if field == "default_config" and value is None else value)
    definition.updated_at = now
    session.flush()
    return definition


def content_for(session: Session, definitions: list[ContractDefinition]) -> content_rules.Content:
    """The schemas needed to judge bindings of these definitions (two small queries)."""
    return content_rules.load(session, definition_ids={d.id for d in definitions})


def binding_read(
    binding: ContractBinding,
    definition: ContractDefinition,
    content: content_rules.Content | None = None,
) -> BindingRead:
    """The binding with its definition's identity, the drift between their versions, and what
    its config and the schema change say (docs/reference/drift.md, severity)."""
    result = classify(binding.definition_contract_version, definition.contract_version)
    judged = (content or content_rules.Content({}, {})).assess(
        definition.id,
        binding.definition_contract_version,
        definition.contract_version,
        binding.config,
    )
    return BindingRead.of(
        binding,
        definition_type=definition.definition_type,
        definition_key=definition.key,
        current_contract_version=definition.contract_version,
        drift=result.drift,
        reason=result.reason,
        config_valid=judged.config_valid,
        config_errors=judged.config_errors,
        undeclared_breaking=judged.undeclared_breaking,
        severity=judged.severity,
    )


def list_bindings(
    session: Session, *, org_id: uuid.UUID, agent_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[tuple[ContractBinding, ContractDefinition]], int]:
    agents_service.get_agent_or_404(session, org_id=org_id, agent_id=agent_id)
    where = (ContractBinding.org_id == org_id, ContractBinding.agent_id == agent_id)
    total = session.scalar(select(func.count()).select_from(ContractBinding).where(*where)) or 0
    query = (
        select(ContractBinding, ContractDefinition)
        .join(ContractDefinition, ContractDefinition.id == ContractBinding.definition_id)
        .where(*where)
        .order_by(ContractDefinition.definition_type, ContractDefinition.key, ContractBinding.id)
    )
    return [(b, d) for b, d in session.execute(query.limit(limit).offset(offset))], total


def _find_binding(
    session: Session, *, agent_id: uuid.UUID, definition_id: uuid.UUID
) -> ContractBinding | None:
    return session.scalars(
        select(ContractBinding).where(
            ContractBinding.agent_id == agent_id, ContractBinding.definition_id == definition_id
        )
    ).first()


def upsert_binding(
    session: Session, *, org_id: uuid.UUID, agent_id: uuid.UUID, body: BindingCreate, now: datetime
) -> tuple[ContractBinding, ContractDefinition, bool]:
    """Bind, or update the existing binding of the same (agent, definition).

    Returns (row, definition, created).
    """
    agents_service.get_agent_or_404(session, org_id=org_id, agent_id=agent_id)
    definition = get_definition_or_404(session, org_id=org_id, definition_id=body.definition_id)
    pinned = "definition_contract_version" in body.model_fields_set
    binding = _find_binding(session, agent_id=agent_id, definition_id=definition.id)
    if binding is None:
        if not definition.is_active:
            raise Conflict(
                "cannot bind to an inactive contract definition",
                code="CONTRACT_DEFINITION_INACTIVE",
            )
        binding = ContractBinding(
            org_id=org_id,
            agent_id=agent_id,
            definition_id=definition.id,
            enabled=body.enabled,
            config=body.config,
            created_at=now,
            updated_at=now,
            definition_contract_version=body.definition_contract_version
            if pinned
            else definition.contract_version,
        )
        try:
            with session.begin_nested():
                session.add(binding)
                session.flush()
            return binding, definition, True
        except IntegrityError:  # a concurrent request bound it first: update that row instead
            binding = _find_binding(session, agent_id=agent_id, definition_id=definition.id)
            if binding is None:
                raise
    binding.enabled, binding.config, binding.updated_at = body.enabled, body.config, now
    if pinned:
        binding.definition_contract_version = body.definition_contract_version
    session.flush()
    return binding, definition, False


def delete_binding(
    session: Session, *, org_id: uuid.UUID, agent_id: uuid.UUID, binding_id: uuid.UUID
) -> tuple[ContractBinding, ContractDefinition]:
    agents_service.get_agent_or_404(session, org_id=org_id, agent_id=agent_id)
    binding = session.get(ContractBinding, binding_id)
    if binding is None or binding.org_id != org_id or binding.agent_id != agent_id:
        raise NotFound("binding not found", code="CONTRACT_BINDING_NOT_FOUND")
    definition = session.get(ContractDefinition, binding.definition_id)
    session.delete(binding)
    session.flush()
    return binding, definition  # type: ignore[return-value]
