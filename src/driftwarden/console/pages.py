"""Console pages (GET), each complete HTML without JavaScript (docs/reference/console.md, pages)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from driftwarden.agents import service as agents_service
from driftwarden.api.deps import SessionDep
from driftwarden.console import filters as filters_
from driftwarden.console import session as cookies
from driftwarden.console import views
from driftwarden.console.users import ConsoleUser, current_user, safe_next
from driftwarden.console.web import ConsoleRoute, render
from driftwarden.contracts import service as contracts_service
from driftwarden.contracts import versions
from driftwarden.errors import NotFound
from driftwarden.notifications.service import OUTBOX_STATUSES
from driftwarden.patterns import lifecycle
from driftwarden.patterns import service as patterns_service
from driftwarden.patterns.schemas import PRIORITIES

# The signing key is read (or made) before the route opens its session: on SQLite a second
# writer would wait for the route's own transaction.
router = APIRouter(
    prefix="/console",
    route_class=ConsoleRoute,
    include_in_schema=False,
    dependencies=[Depends(cookies.signing_key)],
)
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
ScanLimit = Annotated[int, Query(ge=1, le=1000)]
Text = Annotated[str, Query(max_length=200)]
LEVELS = ("none", "warning", "breaking", "invalid")
DEFINITION_TYPES = ("gate", "evaluator", "run_type")


def _org(user: ConsoleUser) -> uuid.UUID:
    if user.org_id is None:
        raise NotFound(
            "there is no org yet; create one with `driftwarden bootstrap`", code="ORG_NOT_FOUND"
        )
    return user.org_id


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"user": None, "next": safe_next(next), "error": None})


@router.get("")
def overview(request: Request, session: SessionDep) -> Response:
    user = current_user(request, session)
    data = views.overview(session, org_id=_org(user), now=request.app.state.clock.now())
    return render(request, "overview.html", {"user": user, **data})


@router.get("/drift")
def drift(
    request: Request,
    session: SessionDep,
    agent_id: Text = "",
    definition_type: Text = "",
    min_drift: Text = "warning",
    include_healthy: bool = False,
    limit: ScanLimit = 50,
    offset: Offset = 0,
) -> Response:
    user = current_user(request, session)
    org_id = _org(user)
    filters = {
        "agent_id": agent_id,
        "definition_type": definition_type,
        "min_drift": min_drift or "warning",
        "include_healthy": include_healthy,
        "limit": limit,
    }
    agent = filters_.uuid_or_none(agent_id, field="agent_id")
    if agent is not None:
        agents_service.get_agent_or_404(session, org_id=org_id, agent_id=agent)
    scan = contracts_service.scan_drift(
        session,
        org_id=org_id,
        agent_id=agent,
        definition_type=filters_.choice(definition_type, DEFINITION_TYPES, field="definition_type"),
        min_drift=filters_.choice(filters["min_drift"], LEVELS, field="min_drift"),
        include_healthy=include_healthy,
        limit=limit,
        offset=offset,
    )
    return render(
        request,
        "drift.html",
        {
            "user": user,
            "scan": scan,
            "filters": filters,
            "query": filters_.query(filters),
            "offset": offset,
            "limit": limit,
            "total": scan.total_count,
            "levels": LEVELS,
            "definition_types": DEFINITION_TYPES,
        },
    )


@router.get("/agents/{agent_id}")
def agent(request: Request, session: SessionDep, agent_id: uuid.UUID) -> Response:
    user = current_user(request, session)
    org_id = _org(user)
    found = agents_service.get_agent_or_404(session, org_id=org_id, agent_id=agent_id)
    scan = contracts_service.scan_drift(
        session, org_id=org_id, agent_id=agent_id, min_drift="none", include_healthy=True, limit=500
    )
    patterns, total = patterns_service.list_patterns(
        session, org_id=org_id, agent_id=agent_id, limit=50
    )
    return render(
        request,
        "agent.html",
        {"user": user, "agent": found, "scan": scan, "patterns": patterns, "patterns_total": total},
    )


@router.get("/definitions/{definition_id}")
def definition(
    request: Request,
    session: SessionDep,
    definition_id: uuid.UUID,
    from_version: Annotated[str | None, Query(alias="from", max_length=256)] = None,
    to_version: Annotated[str | None, Query(alias="to", max_length=256)] = None,
) -> Response:
    """A definition's versions, newest first, and the schema diff between any two of them."""
    user = current_user(request, session)
    found = contracts_service.get_definition_or_404(
        session, org_id=_org(user), definition_id=definition_id
    )
    rows, total = versions.list_versions(session, definition_id=found.id, limit=200, offset=0)
    names = [row.contract_version for row in rows]
    if from_version is None and to_version is None and len(names) >= 2:
        from_version, to_version = names[1], names[0]  # the last step, by default
    diff = None
    if from_version and to_version:
        diff = versions.diff_versions(
            session, definition=found, from_version=from_version, to_version=to_version
        )
    return render(
        request,
        "definition.html",
        {
            "user": user,
            "definition": found,
            "versions": rows,
            "total": total,
            "diff": diff,
            "from_version": from_version,
            "to_version": to_version,
        },
    )


@router.get("/patterns")
def patterns(
    request: Request,
    session: SessionDep,
    agent_id: Text = "",
    primary_tag: Text = "",
    status: Text = "",
    priority: Text = "",
    limit: Limit = 50,
    offset: Offset = 0,
) -> Response:
    user = current_user(request, session)
    filters = {
        "agent_id": agent_id,
        "primary_tag": primary_tag,
        "status": status,
        "priority": priority,
        "limit": limit,
    }
    rows, total = patterns_service.list_patterns(
        session,
        org_id=_org(user),
        agent_id=filters_.uuid_or_none(agent_id, field="agent_id"),
        primary_tag=primary_tag or None,
        status=filters_.choice(status, lifecycle.STATUSES, field="status"),
        priority=filters_.choice(priority, PRIORITIES, field="priority"),
        limit=limit,
        offset=offset,
    )
    return render(
        request,
        "patterns.html",
        {
            "user": user,
            "patterns": rows,
            "total": total,
            "filters": filters,
            "query": filters_.query(filters),
            "limit": limit,
            "offset": offset,
            "statuses": lifecycle.STATUSES,
            "priorities": PRIORITIES,
        },
    )


@router.get("/patterns/{pattern_id}")
def pattern(
    request: Request, session: SessionDep, pattern_id: uuid.UUID, done: str | None = None
) -> Response:
    user = current_user(request, session)
    found = patterns_service.get_pattern_or_404(session, org_id=_org(user), pattern_id=pattern_id)
    targets = sorted(lifecycle.allowed_targets(found.status), key=lifecycle.STATUSES.index)
    return render(
        request,
        "pattern.html",
        {"user": user, "pattern": found, "targets": targets, "done": done == "status"},
    )


@router.get("/schedule")
def schedule(request: Request, session: SessionDep) -> Response:
    user = current_user(request, session)
    data = views.schedule(session, org_id=_org(user), now=request.app.state.clock.now())
    return render(request, "schedule.html", {"user": user, "run": None, **data})


@router.get("/notifications")
def notifications(
    request: Request,
    session: SessionDep,
    status: Text = "",
    limit: Limit = 50,
    offset: Offset = 0,
    replayed: int | None = None,
) -> Response:
    user = current_user(request, session)
    filters = {"status": status, "limit": limit}
    data = views.notifications(
        session,
        org_id=_org(user),
        now=request.app.state.clock.now(),
        status=filters_.choice(status, OUTBOX_STATUSES, field="status"),
        limit=limit,
        offset=offset,
    )
    return render(
        request,
        "notifications.html",
        {
            "user": user,
            "filters": filters,
            "query": filters_.query(filters),
            "limit": limit,
            "offset": offset,
            "replayed": replayed,
            "statuses": OUTBOX_STATUSES,
            **data,
        },
    )
