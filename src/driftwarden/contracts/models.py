"""Contract definitions and the bindings of agents to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from driftwarden.db.base import Base, id_column


class ContractDefinition(Base):
    __tablename__ = "contract_definitions"
    __table_args__ = (
        UniqueConstraint("org_id", "definition_type", "key"),
        # Builtins have org_id NULL, which a plain unique constraint does not compare.
        Index("uq_contract_definitions_builtin_type_key", "definition_type", "key", unique=True,
              sqlite_where=text("org_id IS NULL"), postgresql_where=text("org_id IS NULL")),
    )

    id: Mapped[uuid.UUID] = id_column()
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    definition_type: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    contract_version: Mapped[str] = mapped_column(String(256))
    default_config: Mapped[dict[str, Any]]
    is_active: Mapped[bool]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ContractBinding(Base):
    __tablename__ = "contract_bindings"
    __table_args__ = (
        UniqueConstraint("agent_id", "definition_id"),
        Index(None, "org_id", "agent_id"),
        Index(None, "definition_id"),
    )

    id: Mapped[uuid.UUID] = id_column()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    definition_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contract_definitions.id", ondelete="CASCADE"))
    enabled: Mapped[bool]
    config: Mapped[dict[str, Any]]
    # Stored as given on import, even when it is not valid SemVer (drift then says `invalid`).
    definition_contract_version: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
