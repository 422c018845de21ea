"""Tables the HTTP layer keeps: idempotency records and the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from driftwarden.db.base import Base, id_column


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("api_key_id", "method", "path", "idempotency_key"),)

    id: Mapped[uuid.UUID] = id_column()
    api_key_id: Mapped[uuid.UUID]
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # in_progress | completed
    response_status: Mapped[int | None]
    response_body: Mapped[bytes | None] = mapped_column(LargeBinary)
    response_headers: Mapped[dict[str, Any] | None]
    locked_until: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime]


class ApiAuditLog(Base):
    __tablename__ = "api_audit_logs"
    __table_args__ = (Index(None, "org_id", "created_at"),)

    id: Mapped[uuid.UUID] = id_column()
    request_id: Mapped[str] = mapped_column(String(128), index=True)
    api_key_id: Mapped[uuid.UUID | None]
    org_id: Mapped[uuid.UUID | None]
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(500))
    status_code: Mapped[int]
    error_code: Mapped[str | None] = mapped_column(String(64))
    latency_ms: Mapped[float]
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    idempotent_replayed: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(index=True)
