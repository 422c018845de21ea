"""HTTP for orgs and API keys (under /system, admin only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from driftwarden.api.deps import AdminDep, Caller, ClockDep, PageDep, SessionDep
from driftwarden.api.envelope import ERROR_RESPONSES, Envelope, Page, ok, page
from driftwarden.api.errors import ApiError
from driftwarden.api.idempotency import withhold_secret_on_replay
from driftwarden.auth import keys
from driftwarden.auth import service as auth_service
from driftwarden.auth.models import ApiKey
from driftwarden.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead, OrgCreate, OrgRead

router = APIRouter(prefix="/system", tags=["system"], responses=ERROR_RESPONSES)


def _require_global(caller: Caller) -> None:
    if not caller.is_global:
        raise ApiError(403, "FORBIDDEN", "only a global admin key may do this",
                       {"required_role": "admin (global)", "actual_role": f"{caller.role} (org)"})


@router.post("/orgs", name="create_org", status_code=201, response_model=Envelope[OrgRead])
def create_org(body: OrgCreate, session: SessionDep, caller: AdminDep, clock: ClockDep, request: Request) -> dict:
    _require_global(caller)
    org = auth_service.create_org(session, name=body.name, slug=body.slug, now=clock.now())
    request.state.org_id = org.id
    return ok(OrgRead.model_validate(org))


@router.get("/orgs", name="list_orgs", response_model=Envelope[Page[OrgRead]])
def list_orgs(session: SessionDep, caller: AdminDep, paging: PageDep) -> dict:
    if caller.is_global:
        rows, total = auth_service.list_orgs(session, limit=paging.limit, offset=paging.offset)
    else:
        own = auth_service.get_org(session, org_id=caller.org_id)  # type: ignore[arg-type]
        rows, total = ([own] if own and paging.offset == 0 else []), 1
    return ok(page([OrgRead.model_validate(o) for o in rows], total_count=total, limit=paging.limit,
                   offset=paging.offset))


@router.get("/orgs/{org_id}", name="get_org", response_model=Envelope[OrgRead])
def get_org(org_id: uuid.UUID, session: SessionDep, caller: AdminDep) -> dict:
    org = auth_service.get_org(session, org_id=org_id)
    if org is None or (caller.org_id is not None and caller.org_id != org_id):
        raise ApiError(404, "ORG_NOT_FOUND", "org not found")
    return ok(OrgRead.model_validate(org))


def _read(key: ApiKey, now) -> ApiKeyRead:  # type: ignore[no-untyped-def]
    return ApiKeyRead(id=key.id, name=key.name, org_id=key.org_id, role=key.role, key_prefix=key.key_prefix,
                      status=auth_service.key_status(key, now), expires_at=key.expires_at,
                      revoked_at=key.revoked_at, created_at=key.created_at)


@router.post("/api-keys", name="create_api_key", status_code=201, response_model=Envelope[ApiKeyCreated])
def create_api_key(body: ApiKeyCreate, session: SessionDep, caller: AdminDep, clock: ClockDep,
                   request: Request) -> dict:
    org_id = body.org_id if caller.is_global else (body.org_id or caller.org_id)
    if caller.org_id is not None and org_id != caller.org_id:
        raise ApiError(403, "ORG_FORBIDDEN", "an org admin may only create keys for its own org")
    if keys.ROLE_RANK[body.role] > keys.ROLE_RANK[caller.role]:
        raise ApiError(403, "FORBIDDEN", "a key may not be given more power than its creator's",
                       {"required_role": body.role, "actual_role": caller.role})
    if org_id is not None and auth_service.get_org(session, org_id=org_id) is None:
        raise ApiError(404, "ORG_NOT_FOUND", "org not found")
    now = clock.now()
    if body.expires_at is not None and body.expires_at <= now:
        raise ApiError(422, "VALIDATION_ERROR", "expires_at must be in the future",
                       [{"loc": ["body", "expires_at"], "msg": "must be in the future", "type": "value_error"}])
    withhold_secret_on_replay(request)
    key, plaintext = auth_service.create_api_key(session, name=body.name, org_id=org_id, role=body.role,
                                                 expires_at=body.expires_at, created_by=caller.api_key_id, now=now)
    request.state.org_id = org_id
    return ok(ApiKeyCreated(**_read(key, now).model_dump(), api_key=plaintext))


@router.get("/api-keys", name="list_api_keys", response_model=Envelope[Page[ApiKeyRead]])
def list_api_keys(session: SessionDep, caller: AdminDep, clock: ClockDep, paging: PageDep,
                  org_id: Annotated[uuid.UUID | None, Query()] = None) -> dict:
    if caller.org_id is not None:
        if org_id is not None and org_id != caller.org_id:
            raise ApiError(403, "ORG_FORBIDDEN", "this API key belongs to another org")
        org_id = caller.org_id
    rows, total = auth_service.list_api_keys(session, org_id=org_id, limit=paging.limit, offset=paging.offset)
    now = clock.now()
    return ok(page([_read(k, now) for k in rows], total_count=total, limit=paging.limit, offset=paging.offset))


@router.post("/api-keys/{key_id}/revoke", name="revoke_api_key", response_model=Envelope[ApiKeyRead])
def revoke_api_key(key_id: uuid.UUID, session: SessionDep, caller: AdminDep, clock: ClockDep) -> dict:
    key = session.get(ApiKey, key_id)
    if key is None or (caller.org_id is not None and key.org_id != caller.org_id):
        raise ApiError(404, "API_KEY_NOT_FOUND", "API key not found")
    now = clock.now()
    auth_service.revoke_api_key(session, key=key, now=now)
    return ok(_read(key, now))
