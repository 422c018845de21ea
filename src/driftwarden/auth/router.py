"""HTTP for orgs and API keys (under /system, admin only)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from driftwarden.api.deps import AdminDep, Caller, ClockDep, PageDep, SessionDep
from driftwarden.api.envelope import ERROR_RESPONSES, Envelope, Page, ok, page
from driftwarden.api.idempotency import withhold_secret_on_replay
from driftwarden.auth import keys
from driftwarden.auth import service as auth_service
from driftwarden.auth.models import ApiKey
from driftwarden.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, OrgCreate, OrgRead
from driftwarden.errors import Forbidden, Invalid, NotFound

router = APIRouter(prefix="/system", tags=["system"], responses=ERROR_RESPONSES)


def _require_global(caller: Caller) -> None:
    if not caller.is_global:
        raise Forbidden(
            "only a global admin key may do this",
            details={"required_role": "admin (global)", "actual_role": f"{caller.role} (org)"},
        )


@router.post("/orgs", name="create_org", status_code=201, response_model=Envelope[OrgRead])
def create_org(
    body: OrgCreate, session: SessionDep, caller: AdminDep, clock: ClockDep, request: Request
) -> dict:
    _require_global(caller)
    org = auth_service.create_org(session, name=body.name, slug=body.slug, now=clock.now())
    request.state.org_id = org.id
    return ok(OrgRead.of(org))


@router.get("/orgs", name="list_orgs", response_model=Envelope[Page[OrgRead]])
def list_orgs(session: SessionDep, caller: AdminDep, paging: PageDep) -> dict:
    if caller.is_global:
        rows, total = auth_service.list_orgs(session, limit=paging.limit, offset=paging.offset)
    else:
        own = auth_service.get_org(session, org_id=caller.org_id)  # type: ignore[arg-type]
        rows, total = ([own] if own and paging.offset == 0 else []), 1
    return ok(
        page(
            [OrgRead.of(o) for o in rows],
            total_count=total,
            limit=paging.limit,
            offset=paging.offset,
        )
    )


@router.get("/orgs/{org_id}", name="get_org", response_model=Envelope[OrgRead])
def get_org(org_id: uuid.UUID, session: SessionDep, caller: AdminDep) -> dict:
    org = auth_service.get_org(session, org_id=org_id)
    if org is None or (caller.org_id is not None and caller.org_id != org_id):
        raise NotFound("org not found", code="ORG_NOT_FOUND")
    return ok(OrgRead.of(org))


def _read(key: ApiKey, now: datetime) -> ApiKeyRead:
    return ApiKeyRead.of(key, status=auth_service.key_status(key, now))


@router.post(
    "/api-keys", name="create_api_key", status_code=201, response_model=Envelope[ApiKeyCreated]
)
def create_api_key(
    body: ApiKeyCreate, session: SessionDep, caller: AdminDep, clock: ClockDep, request: Request
) -> dict:
    if not caller.is_global and "org_id" in body.model_fields_set and body.org_id is None:
        _require_global(caller)  # an explicit null asks for a global key
    org_id = body.org_id if caller.is_global else (body.org_id or caller.org_id)
    if caller.org_id is not None and org_id != caller.org_id:
        raise Forbidden("an org admin may only create keys for its own org", code="ORG_FORBIDDEN")
    if keys.ROLE_RANK[body.role] > keys.ROLE_RANK[caller.role]:
        raise Forbidden(
            "a key may not be given more power than its creator's",
            details={"required_role": body.role, "actual_role": caller.role},
        )
    if org_id is not None and auth_service.get_org(session, org_id=org_id) is None:
        raise NotFound("org not found", code="ORG_NOT_FOUND")
    now = clock.now()
    if body.expires_at is not None and body.expires_at <= now:
        raise Invalid.for_field("expires_at", "must be in the future")
    withhold_secret_on_replay(request)
    key, plaintext = auth_service.create_api_key(
        session,
        name=body.name,
        org_id=org_id,
        role=body.role,
        expires_at=body.expires_at,
        created_by=caller.api_key_id,
        now=now,
    )
    request.state.org_id = org_id
    return ok(ApiKeyCreated.of(key, status=auth_service.key_status(key, now), api_key=plaintext))


@router.get("/api-keys", name="list_api_keys", response_model=Envelope[Page[ApiKeyRead]])
def list_api_keys(
    session: SessionDep,
    caller: AdminDep,
    clock: ClockDep,
    paging: PageDep,
    org_id: Annotated[uuid.UUID | None, Query()] = None,
) -> dict:
    if caller.org_id is not None:
        if org_id is not None and org_id != caller.org_id:
            raise Forbidden("this API key belongs to another org", code="ORG_FORBIDDEN")
        org_id = caller.org_id
    rows, total = auth_service.list_api_keys(
        session, org_id=org_id, limit=paging.limit, offset=paging.offset
    )
    now = clock.now()
    return ok(
        page(
            [_read(k, now) for k in rows],
            total_count=total,
            limit=paging.limit,
            offset=paging.offset,
        )
    )


@router.post(
    "/api-keys/{key_id}/revoke", name="revoke_api_key", response_model=Envelope[ApiKeyRead]
)
def revoke_api_key(
    key_id: uuid.UUID, session: SessionDep, caller: AdminDep, clock: ClockDep
) -> dict:
    key = session.get(ApiKey, key_id)
    if key is None or (caller.org_id is not None and key.org_id != caller.org_id):
        raise NotFound("API key not found", code="API_KEY_NOT_FOUND")
    now = clock.now()
    auth_service.revoke_api_key(session, key=key, now=now)
    return ok(_read(key, now))
