"""Per-org webhook endpoints. Callers own the transaction: these functions add and flush only."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from driftwarden.errors import Invalid, NotFound
from driftwarden.notifications import formats, signing, urlpolicy
from driftwarden.notifications.models import NotificationEndpoint, NotificationOutbox
from driftwarden.notifications.schemas import (
    EndpointCreate,
    EndpointRead,
    EndpointUpdate,
    EndpointWithSecret,
)

ROTATION_OVERLAP = timedelta(hours=24)
FINGERPRINT_HEX_CHARS = 12


def secret_fingerprint(secret: str) -> str:
    """Recognises a secret without revealing any of it (docs/reference/notifications.md)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:FINGERPRINT_HEX_CHARS]


def _derived(endpoint: NotificationEndpoint, now: datetime) -> dict[str, Any]:
    """What a client sees instead of the secret.

    A fingerprint, and the overlap only while it lasts.
    """
    overlap = endpoint.previous_secret_expires_at
    return {
        "event_types": list(endpoint.event_types or []),
        "secret_fingerprint": secret_fingerprint(endpoint.secret),
        "previous_secret_expires_at": overlap if overlap and overlap > now else None,
    }


def read(endpoint: NotificationEndpoint, *, now: datetime) -> EndpointRead:
    """The endpoint without its secret: a fingerprint of it, to recognise it."""
    return EndpointRead.of(endpoint, **_derived(endpoint, now))


def read_with_secret(endpoint: NotificationEndpoint, *, now: datetime) -> EndpointWithSecret:
    return EndpointWithSecret.of(endpoint, **_derived(endpoint, now))


def get_endpoint_or_404(
    session: Session, *, org_id: uuid.UUID | None, endpoint_id: uuid.UUID, for_update: bool = False
) -> NotificationEndpoint:
    """The endpoint, if it belongs to `org_id` (None = any org).

    `for_update` row-locks it for a change.
    """
    endpoint = session.get(NotificationEndpoint, endpoint_id, with_for_update=for_update)
    if endpoint is None or (org_id is not None and endpoint.org_id != org_id):
        raise NotFound("notification endpoint not found", code="NOTIFICATION_ENDPOINT_NOT_FOUND")
    return endpoint


def list_endpoints(
    session: Session, *, org_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[NotificationEndpoint], int]:
    query = select(NotificationEndpoint).where(NotificationEndpoint.org_id == org_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(NotificationEndpoint.created_at, NotificationEndpoint.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return list(rows), total


def create_endpoint(
    session: Session,
    *,
    org_id: uuid.UUID,
    body: EndpointCreate,
    now: datetime,
    allow_private: bool,
    resolve: urlpolicy.Resolver = urlpolicy.system_resolver,
) -> NotificationEndpoint:
    """A new endpoint, if its URL passes the URL policy (resolved, never connected to)."""
    urlpolicy.check_url(body.url, allow_private=allow_private, resolve=resolve)
    endpoint = NotificationEndpoint(
        org_id=org_id,
        url=body.url,
        format=body.format or formats.default_format(body.url),
        event_types=list(dict.fromkeys(body.event_types)),
        enabled=body.enabled,
        description=body.description,
        secret=signing.generate_secret(),
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    session.flush()
    return endpoint


def update_endpoint(
    session: Session,
    *,
    endpoint: NotificationEndpoint,
    body: EndpointUpdate,
    now: datetime,
    allow_private: bool,
    resolve: urlpolicy.Resolver = urlpolicy.system_resolver,
) -> NotificationEndpoint:
    """Apply the sent fields; a new URL also redirects this endpoint's undelivered messages."""
    changes = body.model_dump(exclude_unset=True)
    for field in ("url", "format", "enabled", "event_types"):
        if field in changes and changes[field] is None:
            raise Invalid.for_field(field, "may not be null")
    if "url" in changes:
        urlpolicy.check_url(changes["url"], allow_private=allow_private, resolve=resolve)
    for field, value in changes.items():
        setattr(endpoint, field, list(dict.fromkeys(value)) if field == "event_types" else value)
    if changes.get("enabled") is True:
        endpoint.disabled_reason = None
    endpoint.updated_at = now
    if "url" in changes:
        session.execute(
            update(NotificationOutbox)
            .where(
                NotificationOutbox.endpoint_id == endpoint.id,
                NotificationOutbox.status.in_(("pending", "dead")),
            )
            .values(url=endpoint.url, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return endpoint


def rotate_secret(
    session: Session, *, endpoint: NotificationEndpoint, now: datetime
) -> NotificationEndpoint:
    """New secret now.

    The old one keeps signing alongside it for 24 h so receivers can switch over.
    """
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret = signing.generate_secret()
    endpoint.updated_at = now
    session.flush()
    return endpoint


def delete_endpoint(session: Session, *, endpoint: NotificationEndpoint) -> None:
    """Delete the endpoint; undelivered messages stay in the outbox.

    Their endpoint_id becomes null and they die as ENDPOINT_DELETED.
    """
    session.delete(endpoint)
    session.flush()
