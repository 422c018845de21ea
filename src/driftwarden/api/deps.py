"""Dependencies routes declare by type: the session, the clock, the caller and its role.

They are `async def` because none of them waits on anything in the common case: FastAPI runs a
plain `def` dependency in the thread pool, one hand-off per dependency per request, which under
load cost more than the dependencies themselves. The two that may touch the database (a caller
the auth gate did not see, an org a global key names) do that part in the thread pool.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from driftwarden.api import unit_of_work
from driftwarden.auth import keys
from driftwarden.auth.models import Org
from driftwarden.clock import Clock
from driftwarden.errors import Forbidden, Invalid, NotFound, Unauthenticated
from driftwarden.settings import Settings


async def get_session(request: Request) -> Session:
    """The request's unit of work; committed with its idempotency record after the route returns."""
    return unit_of_work.request_session(request.scope)


async def get_clock(request: Request) -> Clock:
    return request.app.state.clock


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


# Routes add and flush; UnitOfWorkMiddleware commits (or rolls back) and closes it before the
# response, and its audit row, go out: an open SQLite transaction would hold the write lock.
SessionDep = Annotated[Session, Depends(get_session)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


@dataclass(frozen=True)
class Caller:
    api_key_id: uuid.UUID
    org_id: uuid.UUID | None
    role: str
    request_id: str

    @property
    def is_global(self) -> bool:
        return self.org_id is None

    def at_least(self, role: str) -> bool:
        return keys.ROLE_RANK[self.role] >= keys.ROLE_RANK[role]


def _lookup_key(session: Session, clock: Clock, token: str | None) -> keys.KeyIdentity | None:
    row = keys.find_active_key(session, token=token, now=clock.now()) if token else None
    return keys.KeyIdentity.of(row) if row else None


async def get_caller(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Caller:
    key: keys.KeyIdentity | None = getattr(request.state, "authenticated_key", None)
    if key is None:  # the auth gate found it for every /api request; this is the fallback
        token = keys.bearer_token(authorization)
        key = await run_in_threadpool(_lookup_key, session, clock, token) if token else None
    if key is None:
        raise Unauthenticated("a valid API key is required (Authorization: Bearer <key>)")
    request.state.api_key_id = key.api_key_id
    if key.org_id is not None:
        request.state.org_id = key.org_id
    return Caller(
        api_key_id=key.api_key_id,
        org_id=key.org_id,
        role=key.role,
        request_id=request.state.request_id,
    )


def require_role(role: str):  # type: ignore[no-untyped-def]
    async def check(caller: Annotated[Caller, Depends(get_caller)]) -> Caller:
        if not caller.at_least(role):
            raise Forbidden(
                f"this action needs the {role} role",
                details={"required_role": role, "actual_role": caller.role},
            )
        return caller

    return check


CallerDep = Annotated[Caller, Depends(require_role("viewer"))]
MemberDep = Annotated[Caller, Depends(require_role("member"))]
AdminDep = Annotated[Caller, Depends(require_role("admin"))]


def resolve_org_id(
    session: Session, request: Request, caller: Caller, requested: uuid.UUID | None
) -> uuid.UUID:
    """The org a request acts on: the caller's own, or the one a global key names."""
    if caller.org_id is not None:
        if requested is not None and requested != caller.org_id:
            raise Forbidden("this API key belongs to another org", code="ORG_FORBIDDEN")
        return caller.org_id
    if requested is None:
        raise Invalid(
            "org_id is required with a global API key",
            details=[
                {"loc": ["org_id"], "msg": "field required for a global key", "type": "missing"}
            ],
        )
    if session.get(Org, requested) is None:
        raise NotFound("org not found", code="ORG_NOT_FOUND")
    request.state.org_id = requested
    return requested


async def org_scope(
    request: Request,
    session: SessionDep,
    caller: CallerDep,
    org_id: Annotated[
        uuid.UUID | None, Query(description="Org to act on; defaults to the key's org.")
    ] = None,
) -> uuid.UUID:
    if caller.org_id is not None or org_id is None:  # answered without the database
        return resolve_org_id(session, request, caller, org_id)
    return await run_in_threadpool(resolve_org_id, session, request, caller, org_id)


OrgQueryDep = Annotated[uuid.UUID, Depends(org_scope)]


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


async def page_params(
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]
