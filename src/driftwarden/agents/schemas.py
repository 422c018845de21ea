"""Agent bodies: what a client sends (Create/Update) apart from what it reads back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from driftwarden.schemas import ReadModel

AgentStatus = Literal["backlog", "build", "testing", "production", "retired"]


class AgentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = None
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    agent_type: str | None = Field(default=None, max_length=100)
    status: AgentStatus = "backlog"
    model: str | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] = Field(default_factory=dict)
    external_id: str | None = Field(default=None, min_length=1, max_length=200)


class AgentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    agent_type: str | None = Field(default=None, max_length=100)
    status: AgentStatus | None = None
    model: str | None = Field(default=None, max_length=200)
    metadata: dict[str, Any] | None = None


class AgentRead(ReadModel):
    id: uuid.UUID
    org_id: uuid.UUID
    external_id: str | None
    name: str
    description: str | None
    agent_type: str | None
    status: AgentStatus
    model: str | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: object, **derived: Any) -> Self:
        """`metadata` is `metadata_` on the row (SQLAlchemy reserves the name)."""
        return super().of(row, metadata=row.metadata_, **derived)  # type: ignore[attr-defined]
