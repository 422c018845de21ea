"""Shared steps for notification tests.

Enqueue through the public interface, read rows, verify signatures.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from driftwarden.notifications import outbox
from driftwarden.notifications.models import NotificationOutbox
from tests.support import Received


def enqueue(
    session_factory,
    settings,
    clock,
    org_id: uuid.UUID,
    event_type: str = "webhook.test",
    data: dict[str, Any] | None = None,
) -> list[uuid.UUID]:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        rows = outbox.enqueue(
            session,
            org_id=org_id,
            event_type=event_type,
            data=data or {"n": 1},
            now=clock.now(),
            settings=settings,
            request_id="req-1",
        )
        session.commit()
        return [r.id for r in rows]


def row(session_factory, outbox_id: uuid.UUID) -> NotificationOutbox:  # type: ignore[no-untyped-def]
    with session_factory() as session:
        return session.scalars(
            select(NotificationOutbox).where(NotificationOutbox.id == outbox_id)
        ).one()


def verified(received: Received, secret: str) -> dict[str, Any]:
    """Checked by the standardwebhooks package's own verifier (wall-clock tolerance included)."""
    return Webhook(secret).verify(received.body, received.headers)
