"""Agents. Callers own the transaction."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftwarden.agents.models import Agent
from driftwarden.agents.schemas import AgentCreate, AgentUpdate
from driftwarden.db.helpers import insert_or_conflict
from driftwarden.errors import Invalid, NotFound


def get_agent(session: Session, *, org_id: uuid.UUID, agent_id: uuid.UUID) -> Agent | None:
    agent = session.get(Agent, agent_id)
    return agent if agent is not None and agent.org_id == org_id else None


def get_agent_or_404(session: Session, *, org_id: uuid.UUID, agent_id: uuid.UUID) -> Agent:
    agent = get_agent(session, org_id=org_id, agent_id=agent_id)
    if agent is None:
        raise NotFound("agent not found", code="AGENT_NOT_FOUND")
    return agent


def list_agents(
    session: Session,
    *,
    org_id: uuid.UUID,
    status: str | None,
    agent_type: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Agent], int]:
    query = select(Agent).where(Agent.org_id == org_id)
    if status is not None:
        query = query.where(Agent.status == status)
    if agent_type is not None:
        query = query.where(Agent.agent_type == agent_type)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Agent.name, Agent.id).limit(limit).offset(offset)).all()
    return list(rows), total


def create_agent(session: Session, *, org_id: uuid.UUID, body: AgentCreate, now: datetime) -> Agent:
    agent = Agent(
        org_id=org_id,
        external_id=body.external_id,
        name=body.name,
        description=body.description,
        agent_type=body.agent_type,
        status=body.status,
        model=body.model,
        metadata_=body.metadata,
        created_at=now,
        updated_at=now,
    )
    insert_or_conflict(
        session,
        agent,
        code="AGENT_EXTERNAL_ID_EXISTS",
        message=f"an agent with external_id {body.external_id!r} already exists",
    )
    return agent


def update_agent(session: Session, *, agent: Agent, body: AgentUpdate, now: datetime) -> Agent:
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise Invalid.for_field("name", "may not be null")
    if "status" in changes and changes["status"] is None:
        raise Invalid.for_field("status", "may not be null")
    for field, value in changes.items():
        if field == "metadata":
            agent.metadata_ = value or {}
        else:
            setattr(agent, field, value)
    agent.updated_at = now
    session.flush()
    return agent
