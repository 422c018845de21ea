"""HTTP for issue patterns (docs/reference/resources.md, patterns).

Drift promotion's route is `scheduler.router.promotion_router`: its defaults are the org's drift
policy, and the patterns domain does not depend on the scheduler.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from driftwarden.agents import service as agents_service
from driftwarden.api.deps import (
    Caller,
    ClockDep,
    MemberDep,
    OrgQueryDep,
    PageDep,
    SessionDep,
    SettingsDep,
    resolve_org_id,
)
from driftwarden.api.envelope import ERROR_RESPONSES, Envelope, Page, ok, page
from driftwarden.patterns import service as patterns_service
from driftwarden.patterns.schemas import (
    HistoryEntry,
    OrgPatternCreate,
    PatternCreate,
    PatternRead,
    PatternStatus,
    PatternUpdate,
    Priority,
)

router = APIRouter(tags=["patterns"], responses=ERROR_RESPONSES)

TagQuery = Annotated[str | None, Query(max_length=100)]


def _list(session: SessionDep, org_id: uuid.UUID, paging: PageDep, **filters: object) -> dict:
    rows, total = patterns_service.list_patterns(
        session, org_id=org_id, limit=paging.limit, offset=paging.offset, **filters
    )  # type: ignore[arg-type]
    return ok(
        page(
            [PatternRead.of(r) for r in rows],
            total_count=total,
            limit=paging.limit,
            offset=paging.offset,
        )
    )


@router.get("/patterns", name="list_patterns", response_model=Envelope[Page[PatternRead]])
def list_patterns(
    session: SessionDep,
    org_id: OrgQueryDep,
    paging: PageDep,
    agent_id: Annotated[uuid.UUID | None, Query()] = None,
    primary_tag: TagQuery = None,
    status: Annotated[PatternStatus | None, Query()] = None,
    priority: Annotated[Priority | None, Query()] = None,
    open_only: Annotated[
        bool, Query(description="Only statuses other than resolved/wont_fix.")
    ] = False,
) -> dict:
    return _list(
        session,
        org_id,
        paging,
        agent_id=agent_id,
        primary_tag=primary_tag,
        status=status,
        priority=priority,
        open_only=open_only,
    )


@router.get(
    "/agents/{agent_id}/patterns",
    name="list_agent_patterns",
    response_model=Envelope[Page[PatternRead]],
)
def list_agent_patterns(
    agent_id: uuid.UUID,
    session: SessionDep,
    org_id: OrgQueryDep,
    paging: PageDep,
    primary_tag: TagQuery = None,
    status: Annotated[PatternStatus | None, Query()] = None,
    priority: Annotated[Priority | None, Query()] = None,
    open_only: Annotated[bool, Query()] = False,
) -> dict:
    agents_service.get_agent_or_404(session, org_id=org_id, agent_id=agent_id)
    return _list(
        session,
        org_id,
        paging,
        agent_id=agent_id,
        primary_tag=primary_tag,
        status=status,
        priority=priority,
        open_only=open_only,
    )


def _create(
    session: SessionDep,
    caller: Caller,
    clock: ClockDep,
    org_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    body: PatternCreate,
) -> dict:
    if agent_id is not None:
        agents_service.get_agent_or_404(session, org_id=org_id, agent_id=agent_id)
    pattern = patterns_service.create_pattern(
        session,
        org_id=org_id,
        agent_id=agent_id,
        body=body,
        now=clock.now(),
        api_key_id=caller.api_key_id,
    )
    return ok(PatternRead.of(pattern))


@router.post(
    "/patterns", name="create_pattern", status_code=201, response_model=Envelope[PatternRead]
)
def create_pattern(
    body: OrgPatternCreate,
    request: Request,
    session: SessionDep,
    caller: MemberDep,
    clock: ClockDep,
) -> dict:
    org_id = resolve_org_id(session, request, caller, body.org_id)
    return _create(session, caller, clock, org_id, body.agent_id, body)


@router.post(
    "/agents/{agent_id}/patterns",
    name="create_agent_pattern",
    status_code=201,
    response_model=Envelope[PatternRead],
)
def create_agent_pattern(
    agent_id: uuid.UUID,
    body: PatternCreate,
    request: Request,
    session: SessionDep,
    caller: MemberDep,
    clock: ClockDep,
) -> dict:
    org_id = resolve_org_id(session, request, caller, body.org_id)
    return _create(session, caller, clock, org_id, agent_id, body)


@router.get("/patterns/{pattern_id}", name="get_pattern", response_model=Envelope[PatternRead])
def get_pattern(pattern_id: uuid.UUID, session: SessionDep, org_id: OrgQueryDep) -> dict:
    return ok(
        PatternRead.of(
            patterns_service.get_pattern_or_404(session, org_id=org_id, pattern_id=pattern_id)
        )
    )


@router.patch("/patterns/{pattern_id}", name="update_pattern", response_model=Envelope[PatternRead])
def update_pattern(
    pattern_id: uuid.UUID,
    body: PatternUpdate,
    session: SessionDep,
    org_id: OrgQueryDep,
    caller: MemberDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> dict:
    pattern = patterns_service.get_pattern_or_404(
        session, org_id=org_id, pattern_id=pattern_id, for_update=True
    )
    patterns_service.update_pattern(
        session,
        pattern=pattern,
        body=body,
        now=clock.now(),
        api_key_id=caller.api_key_id,
        can_force=caller.is_global and caller.at_least("admin"),
        actor_role=f"{caller.role} ({'global' if caller.is_global else 'org'})",
        settings=settings,
        request_id=caller.request_id,
    )
    return ok(PatternRead.of(pattern))


@router.get(
    "/patterns/{pattern_id}/history",
    name="get_pattern_history",
    response_model=Envelope[Page[HistoryEntry]],
)
def get_pattern_history(
    pattern_id: uuid.UUID, session: SessionDep, org_id: OrgQueryDep, paging: PageDep
) -> dict:
    pattern = patterns_service.get_pattern_or_404(session, org_id=org_id, pattern_id=pattern_id)
    history = list(pattern.status_history)
    items = history[paging.offset : paging.offset + paging.limit]
    return ok(page(items, total_count=len(history), limit=paging.limit, offset=paging.offset))
