"""One-time sign-in links (the demo prints one): single use, valid 10 minutes, stored as a hash."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from driftwarden.console.models import ConsoleLoginToken

VALID_FOR = timedelta(minutes=10)
PATH = "/console/login/link"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_one_time_url(
    session_factory: sessionmaker[Session], *, api_key_id: uuid.UUID, base_url: str, now: datetime
) -> str:
    """Store a fresh token's hash for `api_key_id`; return the URL that signs in with it once."""
    token = secrets.token_urlsafe(32)
    with session_factory() as session:
        session.add(
            ConsoleLoginToken(
                token_hash=_hash(token),
                api_key_id=api_key_id,
                expires_at=now + VALID_FOR,
                created_at=now,
            )
        )
        session.commit()
    return f"{base_url.rstrip('/')}{PATH}?token={quote(token)}"


def redeem(session: Session, *, token: str, now: datetime) -> uuid.UUID | None:
    """Mark the token used and return its key id; a used, expired or unknown token gives None.

    One conditional UPDATE decides, so two tabs racing on one link sign in once.
    """
    row = session.execute(
        update(ConsoleLoginToken)
        .where(
            ConsoleLoginToken.token_hash == _hash(token),
            ConsoleLoginToken.used_at.is_(None),
            ConsoleLoginToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(ConsoleLoginToken.api_key_id)
    ).first()
    return row[0] if row else None
