"""Console tables: the shared cookie-signing key and one-time sign-in tokens (hashes only)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from driftwarden.db.base import Base, id_column


class ConsoleSecret(Base):
    """A generated secret every worker and host reads, so a cookie signed by one is valid on all."""

    __tablename__ = "console_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]


class ConsoleLoginToken(Base):
    """A single-use sign-in link for an API key; only the token's SHA-256 is stored."""

    __tablename__ = "console_login_tokens"

    id: Mapped[uuid.UUID] = id_column()
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True
    )
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
