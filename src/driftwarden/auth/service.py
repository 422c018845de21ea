"""Orgs and API keys. Callers own the transaction: these functions add and flush, never commit."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftwarden.auth import keys
from driftwarden.auth.models import ApiKey, Org
from driftwarden.db.helpers import insert_or_conflict


def _slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:80] or "org"
    return f"{slug}-{secrets.token_hex(3)}"


def create_org(session: Session, *, name: str, slug: str | None, now: datetime) -> Org:
    org = Org(name=name, slug=slug or _slugify(name), created_at=now)
    insert_or_conflict(
        session,
        org,
        code="ORG_SLUG_EXISTS",
        message=f"an org with slug {org.slug!r} already exists",
    )
    return org


def get_org(session: Session, *, org_id: uuid.UUID) -> Org | None:
    return session.get(Org, org_id)


def list_orgs(session: Session, *, limit: int, offset: int) -> tuple[list[Org], int]:
    total = session.scalar(select(func.count()).select_from(Org)) or 0
    rows = session.scalars(
        select(Org).order_by(Org.created_at, Org.id).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def key_status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def create_api_key(
    session: Session,
    *,
    name: str,
    org_id: uuid.UUID | None,
    role: str,
    expires_at: datetime | None,
    created_by: uuid.UUID | None,
    now: datetime,
    plaintext: str | None = None,
) -> tuple[ApiKey, str]:
    """Returns the row and the plaintext, which is never stored.

    `plaintext` pins a known dev key (CLI only).
    """
    plaintext = plaintext or keys.generate_key()
    key = ApiKey(
        name=name,
        org_id=org_id,
        role=role,
        key_hash=keys.hash_key(plaintext),
        key_prefix=plaintext[:12],
        expires_at=expires_at,
        created_by_api_key_id=created_by,
        created_at=now,
    )
    session.add(key)
    session.flush()
    return key, plaintext


def list_api_keys(
    session: Session, *, org_id: uuid.UUID | None, limit: int, offset: int
) -> tuple[list[ApiKey], int]:
    query = select(ApiKey)
    if org_id is not None:
        query = query.where(ApiKey.org_id == org_id)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(ApiKey.created_at, ApiKey.id).limit(limit).offset(offset)
    ).all()
    return list(rows), total


def revoke_api_key(session: Session, *, key: ApiKey, now: datetime) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = now
        session.flush()
    return key
