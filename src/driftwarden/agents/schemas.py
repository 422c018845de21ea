"""Agent bodies: what a client sends (Create/Update) apart from what it reads back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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


class AgentRead(BaseModel):
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
    def of(cls, agent: Any) -> "AgentRead":
        return cls(id=agent.id, org_id=agent.org_id, external_id=agent.external_id, name=agent.name,
                   description=agent.description, agent_type=agent.agent_type, status=agent.status,
                   model=agent.model, metadata=agent.metadata_, created_at=agent.created_at,
                   updated_at=agent.updated_at)
