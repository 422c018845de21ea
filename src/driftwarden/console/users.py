"""Who is signed in: the session's API key, re-checked on every request, and the org it acts on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request

from driftwarden.auth import keys
from driftwarden.auth.models import ApiKey, Org
from driftwarden.console import session as cookies
from driftwarden.errors import Forbidden

ORG_SWITCHER_LIMIT = 200


class SignInRequired(Exception):
    """No valid session: the handler answers 303 to the sign-in page (and drops a stale cookie)."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


@dataclass
class ConsoleUser:
    api_key_id: uuid.UUID
    role: str
    key_org_id: uuid.UUID | None
    org_id: uuid.UUID | None
    csrf: str
    data: cookies.SessionData
    orgs: list[Org] = field(default_factory=list)

    def at_least(self, role: str) -> bool:
        return keys.ROLE_RANK[self.role] >= keys.ROLE_RANK[role]

    def require(self, role: str) -> None:
        if not self.at_least(role):
            raise Forbidden(
                f"this action needs the {role} role",
                details={"required_role": role, "actual_role": self.role},
            )


def active_key(session: Session, api_key_id: uuid.UUID, *, now: datetime) -> ApiKey | None:
    """The key if it still works: not revoked, not expired (the API's own rule)."""
    key = session.get(ApiKey, api_key_id)
    if (
        key is None
        or key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= now)
    ):
        return None
    return key


def _acting_org(
    session: Session, key: ApiKey, picked: uuid.UUID | None
) -> tuple[uuid.UUID | None, list[Org]]:
    """An org key acts on its org; a global key on the org it picked, else the first one."""
    if key.org_id is not None:
        return key.org_id, []
    orgs = list(session.scalars(select(Org).order_by(Org.name, Org.id).limit(ORG_SWITCHER_LIMIT)))
    ids = {org.id for org in orgs}
    if picked is not None and (picked in ids or session.get(Org, picked) is not None):
        return picked, orgs
    return (orgs[0].id if orgs else None), orgs


def current_user(request: Request, session: Session) -> ConsoleUser:
    next_path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    data = cookies.read(request)
    key = active_key(session, data.api_key_id, now=request.app.state.clock.now()) if data else None
    if data is None or key is None:
        raise SignInRequired(next_path)
    org_id, orgs = _acting_org(session, key, data.org_id)
    return ConsoleUser(
        api_key_id=key.id,
        role=key.role,
        key_org_id=key.org_id,
        org_id=org_id,
        csrf=cookies.csrf_token(request, data),
        data=data,
        orgs=orgs,
    )


def login_redirect_url(next_path: str) -> str:
    return "/console/login?next=" + quote(next_path, safe="")


def safe_next(value: str | None) -> str:
    """Only a path of this console: no scheme, no host, no `//` or backslash tricks."""
    if not value or not value.startswith("/console") or value.startswith("//") or "\\" in value:
        return "/console"
    return value
