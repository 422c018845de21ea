"""Contract definitions and the bindings of agents to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from driftwarden.db.base import Base, id_column
from driftwarden.errors import Conflict

# "No schema" is SQL NULL, not the JSON value null, so SQL can tell the two apart.
SchemaJSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class ContractDefinition(Base):
    __tablename__ = "contract_definitions"
    __table_args__ = (
        UniqueConstraint("org_id", "definition_type", "key"),
        # Builtins have org_id NULL, which a plain unique constraint does not compare.
        Index(
            "uq_contract_definitions_builtin_type_key",
            "definition_type",
            "key",
            unique=True,
            sqlite_where=text("org_id IS NULL"),
            postgresql_where=text("org_id IS NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = id_column()
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    definition_type: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    contract_version: Mapped[str] = mapped_column(String(256))
    default_config: Mapped[dict[str, Any]]
    # The current version's config JSON Schema (a copy of its contract_definition_versions row).
    config_schema: Mapped[Any | None] = mapped_column(SchemaJSON)
    is_active: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ContractBinding(Base):
    __tablename__ = "contract_bindings"
    __table_args__ = (
        UniqueConstraint("agent_id", "definition_id"),
        Index(None, "org_id", "agent_id"),
        Index(None, "definition_id"),
        # The drift scan counts per (definition, bound version) in one index-only walk, without
        # hashing every row; the convention's name would pass Postgres's 63 characters.
        Index(
            "ix_contract_bindings_drift_groups",
            "org_id",
            "definition_id",
            "definition_contract_version",
            "enabled",
        ),
    )

    id: Mapped[uuid.UUID] = id_column()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    definition_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contract_definitions.id", ondelete="CASCADE")
    )
    enabled: Mapped[bool]
    config: Mapped[dict[str, Any]]
    # Stored as given on import, even when it is not valid SemVer (drift then says `invalid`).
    definition_contract_version: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ContractDefinitionVersion(Base):
    """Every version a definition has had, with its config schema; written once, never changed."""

    __tablename__ = "contract_definition_versions"
    __table_args__ = (UniqueConstraint("definition_id", "contract_version"),)

    id: Mapped[uuid.UUID] = id_column()
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    definition_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contract_definitions.id", ondelete="CASCADE")
    )
    contract_version: Mapped[str] = mapped_column(String(256))
    config_schema: Mapped[Any | None] = mapped_column(SchemaJSON)
    default_config: Mapped[dict[str, Any]]
    changelog: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by_api_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="SET NULL")
    )


@event.listens_for(ContractDefinitionVersion, "before_update")
def _versions_are_immutable(
    mapper: Any, connection: Any, target: ContractDefinitionVersion
) -> None:
    """A version is a published promise: its content never changes once written."""
    raise Conflict(
        f"contract version {target.contract_version!r} is immutable",
        code="CONTRACT_VERSION_IMMUTABLE",
    )
