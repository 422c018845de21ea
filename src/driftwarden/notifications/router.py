"""HTTP for the notifications domain: endpoints and the outbox, under /system (admin)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from driftwarden.api.deps import (
    AdminDep,
    Caller,
    ClockDep,
    PageDep,
    SessionDep,
    SettingsDep,
    resolve_org_id,
)
from driftwarden.api.envelope import ERROR_RESPONSES, Envelope, Page, ok, page
from driftwarden.api.idempotency import IdempotencyKeyRequired, withhold_secret_on_replay
from driftwarden.errors import Conflict, Forbidden
from driftwarden.notifications import endpoints as endpoints_service
from driftwarden.notifications import flows, outbox, urlpolicy
from driftwarden.notifications import service as outbox_service
from driftwarden.notifications.schemas import (
    DeadLetterSummary,
    DeliveryRead,
    DrainRead,
    DrainRequest,
    EndpointCreate,
    EndpointRead,
    EndpointUpdate,
    EndpointWithSecret,
    EventType,
    OutboxRead,
    OutboxStatus,
    ReplayRead,
    ReplayRequest,
)

router = APIRouter(
    prefix="/system/notifications", tags=["notifications"], responses=ERROR_RESPONSES
)


def get_resolver() -> urlpolicy.Resolver:
    """The resolver endpoint URLs are checked with; tests override it to map names without DNS."""
    return urlpolicy.system_resolver


ResolverDep = Annotated[urlpolicy.Resolver, Depends(get_resolver)]


def _visible_org(caller: Caller, org_id: uuid.UUID | None) -> uuid.UUID | None:
    """An org key sees its own org; a global key sees all, or the org it names."""
    if caller.org_id is not None:
        if org_id is not None and org_id != caller.org_id:
            raise Forbidden("this API key belongs to another org", code="ORG_FORBIDDEN")
        return caller.org_id
    return org_id


def _endpoint(session, request: Request, caller: Caller, endpoint_id: uuid.UUID):  # type: ignore[no-untyped-def]
    """The caller's endpoint, row-locked against concurrent changes; its org is audited.

    Another org's endpoint is a 404.
    """
    endpoint = endpoints_service.get_endpoint_or_404(
        session, org_id=caller.org_id, endpoint_id=endpoint_id, for_update=True
    )
    request.state.org_id = endpoint.org_id
    return endpoint


@router.get(
    "/endpoints", name="list_notification_endpoints", response_model=Envelope[Page[EndpointRead]]
)
def list_endpoints(
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    clock: ClockDep,
    paging: PageDep,
    org_id: Annotated[uuid.UUID | None, Query()] = None,
) -> dict:
    org = resolve_org_id(session, request, caller, org_id)
    rows, total = endpoints_service.list_endpoints(
        session, org_id=org, limit=paging.limit, offset=paging.offset
    )
    now = clock.now()
    return ok(
        page(
            [endpoints_service.read(e, now=now) for e in rows],
            total_count=total,
            limit=paging.limit,
            offset=paging.offset,
        )
    )


@router.post(
    "/endpoints",
    name="create_notification_endpoint",
    status_code=201,
    response_model=Envelope[EndpointWithSecret],
)
def create_endpoint(
    body: EndpointCreate,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    clock: ClockDep,
    settings: SettingsDep,
    resolve: ResolverDep,
) -> dict:
    org = resolve_org_id(session, request, caller, body.org_id)
    withhold_secret_on_replay(request)
    endpoint = endpoints_service.create_endpoint(
        session,
        org_id=org,
        body=body,
        now=clock.now(),
        allow_private=settings.notify_allow_private_networks,
        resolve=resolve,
    )
    return ok(endpoints_service.read_with_secret(endpoint, now=clock.now()))


@router.patch(
    "/endpoints/{endpoint_id}",
    name="update_notification_endpoint",
    response_model=Envelope[EndpointRead],
)
def update_endpoint(
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    clock: ClockDep,
    settings: SettingsDep,
    resolve: ResolverDep,
) -> dict:
    endpoint = _endpoint(session, request, caller, endpoint_id)
    endpoints_service.update_endpoint(
        session,
        endpoint=endpoint,
        body=body,
        now=clock.now(),
        allow_private=settings.notify_allow_private_networks,
        resolve=resolve,
    )
    return ok(endpoints_service.read(endpoint, now=clock.now()))


@router.delete(
    "/endpoints/{endpoint_id}",
    name="delete_notification_endpoint",
    response_model=Envelope[EndpointRead],
)
def delete_endpoint(
    endpoint_id: uuid.UUID, request: Request, session: SessionDep, caller: AdminDep, clock: ClockDep
) -> dict:
    endpoint = _endpoint(session, request, caller, endpoint_id)
    gone = endpoints_service.read(endpoint, now=clock.now())
    endpoints_service.delete_endpoint(session, endpoint=endpoint)
    return ok(gone)


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    name="rotate_notification_endpoint_secret",
    response_model=Envelope[EndpointWithSecret],
)
def rotate_secret(
    endpoint_id: uuid.UUID, request: Request, session: SessionDep, caller: AdminDep, clock: ClockDep
) -> dict:
    endpoint = _endpoint(session, request, caller, endpoint_id)
    withhold_secret_on_replay(request)
    endpoints_service.rotate_secret(session, endpoint=endpoint, now=clock.now())
    return ok(endpoints_service.read_with_secret(endpoint, now=clock.now()))


@router.post(
    "/endpoints/{endpoint_id}/test",
    name="test_notification_endpoint",
    response_model=Envelope[DeliveryRead],
)
def test_endpoint(
    endpoint_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    clock: ClockDep,
    settings: SettingsDep,
) -> dict:
    """Queue a `webhook.test` for this endpoint only and attempt it at once.

    It retries like any message.
    """
    endpoint = _endpoint(session, request, caller, endpoint_id)
    if not endpoint.enabled:
        raise Conflict(
            "enable the endpoint before testing it", code="NOTIFICATION_ENDPOINT_DISABLED"
        )
    rows = outbox.enqueue(
        session,
        org_id=endpoint.org_id,
        event_type="webhook.test",
        now=clock.now(),
        settings=settings,
        request_id=caller.request_id,
        endpoint_id=endpoint.id,
        data={"endpoint_id": str(endpoint.id), "message": "driftwarden test notification"},
    )
    session.commit()  # a flow: the message is committed before delivery reads it
    [result] = flows.deliver_now(
        request.app.state.session_factory,
        outbox_ids=[r.id for r in rows],
        settings=settings,
        clock=clock,
    )
    return ok(result.as_dict())


@router.get("/outbox", name="list_notification_outbox", response_model=Envelope[Page[OutboxRead]])
def list_outbox(
    session: SessionDep,
    caller: AdminDep,
    paging: PageDep,
    org_id: Annotated[uuid.UUID | None, Query()] = None,
    status: Annotated[OutboxStatus | None, Query()] = None,
    event_type: Annotated[EventType | None, Query()] = None,
) -> dict:
    rows, total = outbox_service.list_outbox(
        session,
        org_id=_visible_org(caller, org_id),
        status=status,
        event_type=event_type,
        limit=paging.limit,
        offset=paging.offset,
    )
    return ok(
        page(
            [outbox_service.read(r) for r in rows],
            total_count=total,
            limit=paging.limit,
            offset=paging.offset,
        )
    )


@router.post("/outbox/drain", name="drain_notification_outbox", response_model=Envelope[DrainRead])
def drain_outbox(
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    clock: ClockDep,
    settings: SettingsDep,
    body: DrainRequest | None = None,
    limit: Annotated[
        int | None, Query(ge=1, le=200, description="Same as the body's limit.")
    ] = None,
) -> dict:
    """Deliver due messages once each, now; an org key drains only its own org's messages."""
    body = body or DrainRequest(**({"limit": limit} if limit is not None else {}))
    # End the auth read: delivery uses its own transactions (SQLite allows one writer).
    session.commit()
    results = flows.drain(
        request.app.state.session_factory,
        settings=settings,
        clock=clock,
        limit=body.limit,
        org_id=_visible_org(caller, body.org_id),
    )
    return ok(
        {
            "picked": len(results),
            "sent": sum(r.sent for r in results),
            "failed": sum(r.status == "pending" for r in results),
            "dead": sum(r.status == "dead" for r in results),
            "items": [r.as_dict() for r in results],
        }
    )


@router.get(
    "/outbox/dead-letter-summary",
    name="get_notification_dead_letter_summary",
    response_model=Envelope[DeadLetterSummary],
)
def dead_letter_summary(
    session: SessionDep,
    caller: AdminDep,
    clock: ClockDep,
    org_id: Annotated[uuid.UUID | None, Query()] = None,
) -> dict:
    return ok(
        outbox_service.dead_letter_summary(
            session, org_id=_visible_org(caller, org_id), now=clock.now()
        )
    )


@router.post(
    "/outbox/{outbox_id}/retry",
    name="retry_notification_outbox",
    response_model=Envelope[OutboxRead],
)
def retry_outbox(
    outbox_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    caller: AdminDep,
    clock: ClockDep,
    _key: IdempotencyKeyRequired,
) -> dict:
    row = outbox_service.retry_outbox(
        session, org_id=caller.org_id, outbox_id=outbox_id, now=clock.now()
    )
    request.state.org_id = row.org_id
    return ok(outbox_service.read(row))


@router.post(
    "/outbox/dead-letter/replay",
    name="replay_notification_dead_letters",
    response_model=Envelope[ReplayRead],
)
def replay_dead_letters(
    body: ReplayRequest,
    session: SessionDep,
    caller: AdminDep,
    clock: ClockDep,
    _key: IdempotencyKeyRequired,
) -> dict:
    result = outbox_service.replay_dead_letters(
        session,
        org_id=_visible_org(caller, body.org_id),
        event_type=body.event_type,
        limit=body.limit,
        dry_run=body.dry_run,
        now=clock.now(),
    )
    return ok(result)
