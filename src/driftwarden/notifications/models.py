"""Webhook endpoints and the notification outbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from driftwarden.db.base import Base, id_column


class NotificationEndpoint(Base):
    __tablename__ = "notification_endpoints"

    id: Mapped[uuid.UUID] = id_column()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    format: Mapped[str] = mapped_column(String(8))
    event_types: Mapped[list[Any]]
    enabled: Mapped[bool]
    description: Mapped[str | None] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(String(200))
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_secret_expires_at: Mapped[datetime | None]
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class NotificationOutbox(Base):
    __tablename__ = "notification_outbox"
    __table_args__ = (
        Index(None, "status", "next_attempt_at"),
        Index(None, "org_id", "status", "event_type"),
    )

    id: Mapped[uuid.UUID] = id_column()
    org_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    event_type: Mapped[str] = mapped_column(String(100))
    # Standard Webhooks `webhook-id`: stable across every attempt of this message.
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    # `env` = the NOTIFY_WEBHOOK_* default destination; `endpoint` = a per-org endpoint row.
    destination: Mapped[str] = mapped_column(String(16))
    endpoint_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("notification_endpoints.id", ondelete="SET NULL")
    )
    url: Mapped[str] = mapped_column(String(2000))
    format: Mapped[str] = mapped_column(String(8))
    payload: Mapped[dict[str, Any]]
    # The exact bytes sent (and signed) on every attempt.
    body: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16))  # pending | sending | sent | dead
    attempt_count: Mapped[int]
    max_attempts: Mapped[int]
    next_attempt_at: Mapped[datetime]
    lease_expires_at: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(String(2000))
    # Machine-readable cause of the last failure (HTTP_500, TIMEOUT, GONE, ...):
    # dead letters group by it.
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    sent_at: Mapped[datetime | None] = mapped_column(index=True)
    dead_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
