"""HTTP for the contracts domain.

Definitions, bindings, the drift scan, upgrades and bulk import.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from driftwarden.agents import service as agents_service
from driftwarden.api.deps import (
    Caller,
    CallerDep,
    ClockDep,
    MemberDep,
    OrgQueryDep,
    PageDep,
    SessionDep,
    resolve_org_id,
)
from driftwarden.api.envelope import ERROR_RESPONSES, Envelope, Page, ok, page
from driftwarden.api.idempotency import IdempotencyKeyRequired
from driftwarden.contracts import importing, upgrades, versions
from driftwarden.contracts import service as contracts_service
from driftwarden.contracts.drift import Drift
from driftwarden.contracts.models import ContractDefinition
from driftwarden.contracts.schemas import (
    ApplyUpgradeRead,
    ApplyUpgradeRequest,
    BindingCreate,
    BindingRead,
    DefinitionCreate,
    DefinitionRead,
    DefinitionType,
    DefinitionUpdate,
    DiffRead,
    DriftScanRead,
    ImportDocument,
    ImportResult,
    UpgradePreviewRead,
    UpgradePreviewRequest,
    VersionRead,
)
from driftwarden.errors import Forbidden, Invalid

router = APIRouter(responses=ERROR_RESPONSES)
DEFINITIONS = "/contracts/definitions"
OrgParam = Annotated[
    uuid.UUID | None, Query(description="Org to act on; defaults to the key's org.")
]
BINDINGS = "/agents/{agent_id}/bindings"


def _reject_builtin(session: Session, definition_id: uuid.UUID) -> None:
    """Builtins are immutable for everyone, whatever org the request names."""
    definition = session.get(ContractDefinition, definition_id)
    if definition is not None:
        contracts_service.ensure_mutable(definition)


def _definition_owner(
    session: Session, request: Request, caller: Caller, body: DefinitionCreate
) -> uuid.UUID | None:
    if not body.builtin:
        return resolve_org_id(session, request, caller, body.org_id)
    if not (caller.is_global and caller.at_least("admin")):
        scope = "global" if caller.is_global else "org"
        raise Forbidden(
            "only a global admin key may create builtin definitions",
            details={"required_role": "admin (global)", "actual_role": f"{caller.role} ({scope})"},
        )
    if body.org_id is not None:
        raise Invalid(
            "a builtin definition belongs to no org",
            details=[
                {
                    "loc": ["body", "org_id"],
                    "msg": "must be null when builtin is true",
                    "type": "value_error",
                }
            ],
        )
    return None


@router.post(
    DEFINITIONS,
    name="create_contract_definition",
    status_code=201,
    tags=["contracts"],
    response_model=Envelope[DefinitionRead],
)
def create_definition(
    body: DefinitionCreate,
    request: Request,
    session: SessionDep,
    caller: MemberDep,
    clock: ClockDep,
) -> dict:
    org_id = _definition_owner(session, request, caller, body)
    definition = contracts_service.create_definition(
        session, org_id=org_id, body=body, now=clock.now(), api_key_id=caller.api_key_id
    )
    return ok(DefinitionRead.of(definition))


@router.get(
    DEFINITIONS,
    name="list_contract_definitions",
    tags=["contracts"],
    response_model=Envelope[Page[DefinitionRead]],
)
def list_definitions(
    session: SessionDep,
    org_id: OrgQueryDep,
    paging: PageDep,
    definition_type: Annotated[DefinitionType | None, Query()] = None,
    include_builtin: bool = True,
    active_only: bool = True,
) -> dict:
    rows, total = contracts_service.list_definitions(
        session,
        org_id=org_id,
        definition_type=definition_type,
        include_builtin=include_builtin,
        active_only=active_only,
        limit=paging.limit,
        offset=paging.offset,
    )
    return ok(
        page(
            [DefinitionRead.of(d) for d in rows],
            total_count=total,
            limit=paging.limit,
            offset=paging.offset,
        )
    )


@router.get(
    DEFINITIONS + "/{definition_id}",
    name="get_contract_definition",
    tags=["contracts"],
    response_model=Envelope[DefinitionRead],
)
def get_definition(definition_id: uuid.UUID, session: SessionDep, org_id: OrgQueryDep) -> dict:
    definition = contracts_service.get_definition_or_404(
        session, org_id=org_id, definition_id=definition_id
    )
    return ok(DefinitionRead.of(definition))


@router.patch(
    DEFINITIONS + "/{definition_id}",
    name="update_contract_definition",
    tags=["contracts"],
    response_model=Envelope[DefinitionRead],
)
def update_definition(
    definition_id: uuid.UUID,
    body: DefinitionUpdate,
    request: Request,
    session: SessionDep,
    caller: MemberDep,
    clock: ClockDep,
    org_id: OrgParam = None,
) -> dict:
    _reject_builtin(session, definition_id)
    scope = resolve_org_id(session, request, caller, org_id)
    definition = contracts_service.get_definition_or_404(
        session, org_id=scope, definition_id=definition_id
    )
    contracts_service.update_definition(session, definition=definition, body=body, now=clock.now())
    return ok(DefinitionRead.of(definition))


@router.get(
    DEFINITIONS + "/{definition_id}/versions",
    name="list_contract_definition_versions",
    tags=["contracts"],
    response_model=Envelope[Page[VersionRead]],
)
def list_versions(
    definition_id: uuid.UUID, session: SessionDep, org_id: OrgQueryDep, paging: PageDep
) -> dict:
    definition = contracts_service.get_definition_or_404(
        session, org_id=org_id, definition_id=definition_id
    )
    rows, total = versions.list_versions(
        session, definition_id=definition.id, limit=paging.limit, offset=paging.offset
    )
    return ok(
        page(
            [VersionRead.model_validate(r) for r in rows],
            total_count=total,
            limit=paging.limit,
            offset=paging.offset,
        )
    )


@router.get(
    DEFINITIONS + "/{definition_id}/versions/{contract_version}",
    name="get_contract_definition_version",
    tags=["contracts"],
    response_model=Envelope[VersionRead],
)
def get_version(
    definition_id: uuid.UUID, contract_version: str, session: SessionDep, org_id: OrgQueryDep
) -> dict:
    definition = contracts_service.get_definition_or_404(
        session, org_id=org_id, definition_id=definition_id
    )
    row = versions.get_version_or_404(
        session, definition_id=definition.id, contract_version=contract_version
    )
    return ok(VersionRead.model_validate(row))


@router.get(
    DEFINITIONS + "/{definition_id}/diff",
    name="diff_contract_definition_versions",
    tags=["contracts"],
    response_model=Envelope[DiffRead],
)
def diff_versions(
    definition_id: uuid.UUID,
    session: SessionDep,
    org_id: OrgQueryDep,
    from_version: Annotated[str, Query(alias="from", max_length=256)],
    to_version: Annotated[str, Query(alias="to", max_length=256)],
) -> dict:
    definition = contracts_service.get_definition_or_404(
        session, org_id=org_id, definition_id=definition_id
    )
    return ok(
        versions.diff_versions(
            session, definition=definition, from_version=from_version, to_version=to_version
        )
    )


@router.post(
    BINDINGS,
    name="upsert_agent_binding",
    status_code=201,
    tags=["bindings"],
    response_model=Envelope[BindingRead],
    responses={
        200: {"model": Envelope[BindingRead], "description": "An existing binding was updated"}
    },
)
def upsert_binding(
    agent_id: uuid.UUID,
    body: BindingCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    caller: MemberDep,
    clock: ClockDep,
) -> dict:
    org_id = resolve_org_id(session, request, caller, body.org_id)
    binding, definition, created = contracts_service.upsert_binding(
        session, org_id=org_id, agent_id=agent_id, body=body, now=clock.now()
    )
    response.status_code = 201 if created else 200
    content = contracts_service.content_for(session, [definition])
    return ok(contracts_service.binding_read(binding, definition, content))


@router.get(
    BINDINGS,
    name="list_agent_bindings",
    tags=["bindings"],
    response_model=Envelope[Page[BindingRead]],
)
def list_bindings(
    agent_id: uuid.UUID, session: SessionDep, org_id: OrgQueryDep, paging: PageDep
) -> dict:
    rows, total = contracts_service.list_bindings(
        session, org_id=org_id, agent_id=agent_id, limit=paging.limit, offset=paging.offset
    )
    content = contracts_service.content_for(session, [d for _, d in rows])
    items = [contracts_service.binding_read(b, d, content) for b, d in rows]
    return ok(page(items, total_count=total, limit=paging.limit, offset=paging.offset))


@router.delete(
    BINDINGS + "/{binding_id}",
    name="delete_agent_binding",
    tags=["bindings"],
    response_model=Envelope[BindingRead],
)
def delete_binding(
    agent_id: uuid.UUID,
    binding_id: uuid.UUID,
    session: SessionDep,
    org_id: OrgQueryDep,
    caller: MemberDep,
) -> dict:
    binding, definition = contracts_service.delete_binding(
        session, org_id=org_id, agent_id=agent_id, binding_id=binding_id
    )
    read = contracts_service.binding_read(
        binding, definition, contracts_service.content_for(session, [definition])
    )
    return ok(read)


@router.get(
    "/contracts/drift",
    name="scan_contract_drift",
    tags=["drift"],
    response_model=Envelope[DriftScanRead],
)
def scan_drift(
    session: SessionDep,
    org_id: OrgQueryDep,
    agent_id: Annotated[uuid.UUID | None, Query()] = None,
    definition_type: Annotated[DefinitionType | None, Query()] = None,
    min_drift: Annotated[Drift, Query()] = "warning",
    include_healthy: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> Response:
    # Rendered with orjson, not validated against DriftScanRead: every field is built here from
    # values the scan typed itself (tests check the body against the model), and validating and
    # encoding 200 items was a tenth of a small scan's time. No docstring: it would become the
    # operation's OpenAPI description.
    if agent_id is not None:
        agents_service.get_agent_or_404(session, org_id=org_id, agent_id=agent_id)
    scan = contracts_service.scan_drift(
        session,
        org_id=org_id,
        agent_id=agent_id,
        definition_type=definition_type,
        min_drift=min_drift,
        include_healthy=include_healthy,
        limit=limit,
        offset=offset,
    )
    body = ok(
        {
            "checked_agent_count": scan.checked_agent_count,
            "checked_binding_count": scan.checked_binding_count,
            "counts": scan.counts,
            "severity_counts": scan.severity_counts,
            "breaking_count": scan.breaking_count,
            "warning_count": scan.warning_count,
            "invalid_count": scan.invalid_count,
            "total_count": scan.total_count,
            "count": len(scan.items),
            "limit": limit,
            "offset": offset,
            "items": [item.as_dict() for item in scan.items],
        }
    )
    return Response(orjson.dumps(body), media_type="application/json")


@router.post(
    "/contracts/upgrade-preview",
    name="preview_contract_upgrade",
    tags=["upgrades"],
    response_model=Envelope[UpgradePreviewRead],
)
def preview_upgrade(
    body: UpgradePreviewRequest, request: Request, session: SessionDep, caller: CallerDep
) -> dict:
    org_id = resolve_org_id(session, request, caller, body.org_id)
    return ok(upgrades.preview_upgrade(session, org_id=org_id, body=body))


@router.post(
    "/contracts/apply-upgrade",
    name="apply_contract_upgrade",
    tags=["upgrades"],
    response_model=Envelope[ApplyUpgradeRead],
)
def apply_upgrade(
    body: ApplyUpgradeRequest,
    request: Request,
    session: SessionDep,
    caller: MemberDep,
    clock: ClockDep,
    _key: IdempotencyKeyRequired,
) -> dict:
    _reject_builtin(session, body.definition_id)
    org_id = resolve_org_id(session, request, caller, body.org_id)
    result = upgrades.apply_upgrade(
        session, org_id=org_id, body=body, now=clock.now(), api_key_id=caller.api_key_id
    )
    return ok(result)


@router.post(
    "/contracts/import",
    name="import_contracts",
    tags=["contracts"],
    response_model=Envelope[ImportResult],
)
def import_contracts(
    body: ImportDocument,
    request: Request,
    session: SessionDep,
    caller: MemberDep,
    clock: ClockDep,
    dry_run: bool = False,
) -> dict:
    org_id = resolve_org_id(session, request, caller, body.org_id)
    result = importing.import_document(session, org_id=org_id, doc=body, now=clock.now())
    if dry_run:
        session.rollback()
    return ok({**result, "dry_run": dry_run})
