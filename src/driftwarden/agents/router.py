"""HTTP for agents."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from driftwarden.agents import service as agents_service
from driftwarden.agents.schemas import AgentCreate, AgentRead, AgentStatus, AgentUpdate
from driftwarden.api.deps import (
    ClockDep,
    MemberDep,
    OrgQueryDep,
    PageDep,
    SessionDep,
    resolve_org_id,
)
from driftwarden.api.envelope import ERROR_RESPONSES, Envelope, Page, ok, page

router = APIRouter(prefix="/agents", tags=["agents"], responses=ERROR_RESPONSES)


@router.post("", name="create_agent", status_code=201, response_model=Envelope[AgentRead])
def create_agent(
    body: AgentCreate, request: Request, session: SessionDep, caller: MemberDep, clock: ClockDep
) -> dict:
    org_id = resolve_org_id(session, request, caller, body.org_id)
    agent = agents_service.create_agent(session, org_id=org_id, body=body, now=clock.now())
    return ok(AgentRead.of(agent))


@router.get("", name="list_agents", response_model=Envelope[Page[AgentRead]])
def list_agents(
    session: SessionDep,
    org_id: OrgQueryDep,
    paging: PageDep,
    status: Annotated[AgentStatus | None, Query()] = None,
    agent_type: Annotated[str | None, Query(max_length=100)] = None,
) -> dict:
    rows, total = agents_service.list_agents(
        session,
        org_id=org_id,
        status=status,
        agent_type=agent_type,
        limit=paging.limit,
        offset=paging.offset,
    )
    return ok(
        page(
            [AgentRead.of(a) for a in rows],
            total_count=total,
            limit=paging.limit,
            offset=paging.offset,
        )
    )


@router.get("/{agent_id}", name="get_agent", response_model=Envelope[AgentRead])
def get_agent(agent_id: uuid.UUID, session: SessionDep, org_id: OrgQueryDep) -> dict:
    return ok(
        AgentRead.of(agents_service.get_agent_or_404(session, org_id=org_id, agent_id=agent_id))
    )


@router.patch("/{agent_id}", name="update_agent", response_model=Envelope[AgentRead])
def update_agent(
    agent_id: uuid.UUID,
    body: AgentUpdate,
    session: SessionDep,
    org_id: OrgQueryDep,
    caller: MemberDep,
    clock: ClockDep,
) -> dict:
    agent = agents_service.get_agent_or_404(session, org_id=org_id, agent_id=agent_id)
    agents_service.update_agent(session, agent=agent, body=body, now=clock.now())
    return ok(AgentRead.of(agent))
