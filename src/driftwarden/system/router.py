"""The audit log (admin) and the health probes (no auth)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import func, select, text

from driftwarden.api.deps import AdminDep, PageDep, SessionDep
from driftwarden.api.envelope import ERROR_RESPONSES, Envelope, Page, error_body, ok, page
from driftwarden.api.models import ApiAuditLog
from driftwarden.db import migrate
from driftwarden.errors import Forbidden
from driftwarden.schemas import ReadModel

router = APIRouter(prefix="/system", tags=["system"], responses=ERROR_RESPONSES)
health_router = APIRouter(tags=["health"])


class AuditLogRead(ReadModel):
    id: uuid.UUID
    request_id: str
    api_key_id: uuid.UUID | None
    org_id: uuid.UUID | None
    method: str
    path: str
    status_code: int
    error_code: str | None
    latency_ms: float
    idempotency_key: str | None
    idempotent_replayed: bool
    created_at: datetime


@router.get("/audit-logs", name="list_audit_logs", response_model=Envelope[Page[AuditLogRead]])
def list_audit_logs(
    session: SessionDep,
    caller: AdminDep,
    paging: PageDep,
    request_id: Annotated[str | None, Query(max_length=128)] = None,
    path: Annotated[str | None, Query(max_length=500, description="substring")] = None,
    method: Annotated[str | None, Query(max_length=8)] = None,
    status_code: Annotated[int | None, Query(ge=100, le=599)] = None,
    error_code: Annotated[str | None, Query(max_length=64)] = None,
    org_id: Annotated[uuid.UUID | None, Query()] = None,
) -> dict:
    if caller.org_id is not None:
        if org_id is not None and org_id != caller.org_id:
            raise Forbidden("this API key belongs to another org", code="ORG_FORBIDDEN")
        org_id = caller.org_id
    query = select(ApiAuditLog)
    filters = {
        ApiAuditLog.request_id: request_id,
        ApiAuditLog.method: method and method.upper(),
        ApiAuditLog.status_code: status_code,
        ApiAuditLog.error_code: error_code,
        ApiAuditLog.org_id: org_id,
    }
    for column, value in filters.items():
        if value is not None:
            query = query.where(column == value)
    if path:
        query = query.where(ApiAuditLog.path.contains(path, autoescape=True))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(ApiAuditLog.created_at.desc(), ApiAuditLog.id)
        .limit(paging.limit)
        .offset(paging.offset)
    ).all()
    items = [AuditLogRead.of(r) for r in rows]
    return ok(page(items, total_count=total, limit=paging.limit, offset=paging.offset))


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    database: str
    schema_revision: str | None
    expected_revision: str | None


@health_router.get("/healthz", name="healthz", response_model=Envelope[Health])
def healthz() -> dict:
    return ok({"status": "ok"})


@health_router.get(
    "/readyz",
    name="readyz",
    response_model=Envelope[Ready],
    responses={503: ERROR_RESPONSES[500] | {"description": "Not ready"}},
)
def readyz(request: Request) -> object:
    engine = request.app.state.engine
    expected = migrate.head_revision()
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = migrate.current_revision(engine)
    except Exception:
        return JSONResponse(
            error_body("DATABASE_UNREACHABLE", "database is not reachable"), status_code=503
        )
    if current != expected:
        return JSONResponse(
            error_body(
                "SCHEMA_NOT_CURRENT",
                "database schema is not at the latest migration",
                {"schema_revision": current, "expected_revision": expected},
            ),
            status_code=503,
        )
    return ok(
        {
            "status": "ready",
            "database": engine.dialect.name,
            "schema_revision": current,
            "expected_revision": expected,
        }
    )
