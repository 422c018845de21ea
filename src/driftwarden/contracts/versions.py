"""The version history of contract definitions: written on create, apply-upgrade and import.

Rows are immutable (docs/reference/drift.md, contract versions and schemas): moving a definition
to a version it already had takes that version's stored content back; sending different content
for an existing version is refused.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftwarden.contracts import schema_diff
from driftwarden.contracts.configs import check_schema
from driftwarden.contracts.drift import classify, parse_version
from driftwarden.contracts.models import ContractDefinition, ContractDefinitionVersion
from driftwarden.errors import Conflict, NotFound

CONTENT = ("config_schema", "default_config", "changelog")


def get_version(
    session: Session, *, definition_id: uuid.UUID, contract_version: str
) -> ContractDefinitionVersion | None:
    return session.scalars(
        select(ContractDefinitionVersion).where(
            ContractDefinitionVersion.definition_id == definition_id,
            ContractDefinitionVersion.contract_version == contract_version,
        )
    ).first()


def get_version_or_404(
    session: Session, *, definition_id: uuid.UUID, contract_version: str
) -> ContractDefinitionVersion:
    version = get_version(session, definition_id=definition_id, contract_version=contract_version)
    if version is None:
        raise NotFound(
            f"no version {contract_version!r} of this contract definition",
            code="CONTRACT_VERSION_NOT_FOUND",
            details={"definition_id": str(definition_id), "contract_version": contract_version},
        )
    return version


def list_versions(
    session: Session, *, definition_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[ContractDefinitionVersion], int]:
    """Newest first: by SemVer precedence, versions that are not SemVer last, then by creation."""
    where = ContractDefinitionVersion.definition_id == definition_id
    rows = list(session.scalars(select(ContractDefinitionVersion).where(where)))
    total = (
        session.scalar(select(func.count()).select_from(ContractDefinitionVersion).where(where))
        or 0
    )

    def newest_first(row: ContractDefinitionVersion) -> tuple:
        parsed = parse_version(row.contract_version)
        return (parsed is not None, parsed or 0, row.created_at)

    rows.sort(key=newest_first, reverse=True)
    return rows[offset : offset + limit], total


def write_version(
    session: Session,
    *,
    definition: ContractDefinition,
    content: dict[str, Any],
    now: datetime,
    api_key_id: uuid.UUID | None = None,
) -> ContractDefinitionVersion:
    """Record `definition`'s current version with `content`, or return the row already there."""
    check_schema(content.get("config_schema"))
    existing = get_version(
        session, definition_id=definition.id, contract_version=definition.contract_version
    )
    if existing is not None:
        differs = [k for k in CONTENT if k in content and content[k] != getattr(existing, k)]
        if differs:
            raise Conflict(
                f"version {definition.contract_version!r} already exists with other "
                f"{', '.join(differs)}; versions are immutable, publish a new one",
                code="CONTRACT_VERSION_IMMUTABLE",
                details={"contract_version": definition.contract_version, "fields": differs},
            )
        return existing
    version = ContractDefinitionVersion(
        org_id=definition.org_id,
        definition_id=definition.id,
        contract_version=definition.contract_version,
        config_schema=content.get("config_schema"),
        default_config=content.get("default_config") or {},
        changelog=content.get("changelog"),
        created_at=now,
        created_by_api_key_id=api_key_id,
    )
    session.add(version)
    session.flush()
    return version


def judge(
    bound: str | None,
    current: str | None,
    bound_schema: Any,
    current_schema: Any,
    *,
    both_stored: bool,
) -> dict[str, Any]:
    """The diff from one version to another against what its version numbers declare."""
    changes = schema_diff.diff(bound_schema, current_schema)
    declared = classify(bound, current).drift
    seen = schema_diff.observed(changes)
    undeclared = (
        both_stored
        and bound_schema is not None
        and current_schema is not None
        and seen == "breaking"
        and declared in ("none", "warning")
    )
    return {
        "changes": [c.as_dict() for c in changes],
        "declared": declared,
        "observed": seen,
        "undeclared_breaking": undeclared,
    }


def diff_versions(
    session: Session, *, definition: ContractDefinition, from_version: str, to_version: str
) -> dict[str, Any]:
    old = get_version_or_404(session, definition_id=definition.id, contract_version=from_version)
    new = get_version_or_404(session, definition_id=definition.id, contract_version=to_version)
    return {
        "definition_id": definition.id,
        "from_version": from_version,
        "to_version": to_version,
        **judge(from_version, to_version, old.config_schema, new.config_schema, both_stored=True),
    }
