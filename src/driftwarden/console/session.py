"""Console sessions: a signed cookie with the API key's id, CSRF tokens bound to it, origin checks.

See docs/reference/console.md (sign-in, signing key, CSRF).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import Response

from driftwarden.console.models import ConsoleSecret
from driftwarden.settings import Settings

COOKIE = "dw_session"
COOKIE_PATH = "/console"
MAX_AGE_SECONDS = 12 * 3600
SIGNING_KEY_NAME = "cookie_signing_key"


@dataclass(frozen=True)
class SessionData:
    """What the cookie carries: the key's id, a nonce for the CSRF token, the org picked."""

    api_key_id: uuid.UUID
    nonce: str
    org_id: uuid.UUID | None = None

    def dump(self) -> dict[str, str | None]:
        return {
            "k": str(self.api_key_id),
            "n": self.nonce,
            "o": str(self.org_id) if self.org_id else None,
        }


def _stored_key(session_factory: sessionmaker[Session], *, now: datetime) -> str:
    """The generated key, made by whichever process asks first (the primary key settles races)."""
    with session_factory() as session:
        found = session.scalar(
            select(ConsoleSecret.value).where(ConsoleSecret.name == SIGNING_KEY_NAME)
        )
        if found:
            return found
        session.add(
            ConsoleSecret(name=SIGNING_KEY_NAME, value=secrets.token_urlsafe(48), created_at=now)
        )
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
        return (
            session.scalar(
                select(ConsoleSecret.value).where(ConsoleSecret.name == SIGNING_KEY_NAME)
            )
            or ""
        )


def signing_key(request: Request) -> str:
    """CONSOLE_SECRET_KEY when set, else the key kept in the database (read once per process)."""
    state = request.app.state
    cached: str | None = getattr(state, "console_signing_key", None)
    if cached:
        return cached
    settings: Settings = state.settings
    configured = settings.console_secret_key
    key = (
        configured.get_secret_value()
        if configured is not None
        else _stored_key(state.session_factory, now=state.clock.now())
    )
    state.console_signing_key = key
    return key


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(signing_key(request), salt="driftwarden.console.session")


def read(request: Request) -> SessionData | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(request).loads(raw, max_age=MAX_AGE_SECONDS)
        org = data.get("o")
        return SessionData(
            api_key_id=uuid.UUID(data["k"]),
            nonce=str(data["n"]),
            org_id=uuid.UUID(org) if org else None,
        )
    except (BadSignature, KeyError, TypeError, ValueError, AttributeError):
        return None


def new_session(api_key_id: uuid.UUID) -> SessionData:
    return SessionData(api_key_id=api_key_id, nonce=secrets.token_urlsafe(18))


def _secure(request: Request) -> bool:
    settings: Settings = request.app.state.settings
    return settings.console_cookie_secure or request.url.scheme == "https"


def write(request: Request, response: Response, data: SessionData) -> None:
    response.set_cookie(
        COOKIE,
        _serializer(request).dumps(data.dump()),
        max_age=MAX_AGE_SECONDS,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def clear(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=_secure(request)
    )


def csrf_token(request: Request, data: SessionData) -> str:
    """An HMAC of the session's nonce: valid for this session only, nothing to store."""
    message = f"csrf:{data.api_key_id}:{data.nonce}".encode()
    return hmac.new(signing_key(request).encode(), message, hashlib.sha256).hexdigest()


def csrf_ok(request: Request, data: SessionData, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(request, data), str(token))


def same_origin(request: Request) -> bool:
    """No Origin (old browsers, curl) passes; an Origin must be this server's scheme://host."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    own = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
    return origin.rstrip("/") == own
