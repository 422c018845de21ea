"""API key material: generation, hashing, lookup.

The plaintext exists only in the create response.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import Connection, Select, bindparam, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from driftwarden.auth.models import ApiKey

KEY_PREFIX = "dwk_"
Role = Literal["viewer", "member", "admin"]  # each can do what the ones before it can
ROLES: tuple[str, ...] = get_args(Role)
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}


@dataclass(frozen=True)
class KeyIdentity:
    """What a request needs to know about the key that authenticated it."""

    api_key_id: uuid.UUID
    org_id: uuid.UUID | None
    role: str

    @classmethod
    def of(cls, key: ApiKey) -> KeyIdentity:
        return cls(api_key_id=key.id, org_id=key.org_id, role=key.role)


def generate_key() -> str:
    # 30 random bytes -> exactly 40 url-safe characters. 40 characters of a 64-symbol alphabet hold
    # 240 bits, the most that format can carry (the spec's ">= 256 bits" cannot fit in it).
    return KEY_PREFIX + secrets.token_urlsafe(30)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _active(keys: Any, key_hash: Any, now: Any) -> tuple[ColumnElement[bool], ...]:
    """The key of `key_hash`, if neither revoked nor expired at `now`: one indexed lookup.

    `keys` is the entity or its table's columns; the values are values or bound parameters.
    """
    return (
        keys.key_hash == key_hash,
        keys.revoked_at.is_(None),
        or_(keys.expires_at.is_(None), keys.expires_at > now),
    )


def _identify_statement() -> Select[Any]:
    """Built once, over the table (Core), with its values bound per call: every authenticated
    request runs it."""
    keys = ApiKey.__table__.c
    key_hash = bindparam("key_hash", type_=keys.key_hash.type)
    now = bindparam("now", type_=keys.expires_at.type)
    return select(keys.id, keys.org_id, keys.role).where(*_active(keys, key_hash, now))


_IDENTIFY = _identify_statement()


def identify(connection: Connection, *, token: str, now: datetime) -> KeyIdentity | None:
    """The active key a token names, as one SELECT of what a request needs."""
    row = connection.execute(_IDENTIFY, {"key_hash": hash_key(token), "now": now}).first()
    return KeyIdentity(api_key_id=row.id, org_id=row.org_id, role=row.role) if row else None


def find_active_key(session: Session, *, token: str, now: datetime) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(*_active(ApiKey, hash_key(token), now))).first()
