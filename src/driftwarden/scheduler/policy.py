"""The per-org drift policy. Callers own the transaction.

docs/reference/scheduler.md#drift-policy
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from driftwarden.scheduler.models import DriftPolicy
from driftwarden.scheduler.schemas import PolicyFields, PolicyRead, PolicyUpdate

FIELDS = tuple(PolicyFields.model_fields)
GUARDED = (*FIELDS, "updated_at")  # what `unchanged` compares: the row as it was read
_policies = DriftPolicy.__table__
_POLICY_ROW = select(_policies).where(
    _policies.c.org_id == bindparam("org_id", type_=_policies.c.org_id.type)
)
REMEMBERED_ORGS = 10_000  # orgs whose last read policy is kept; forgotten all at once when full
_last_read: dict[uuid.UUID, PolicyRead] = {}


def effective_policy(session: Session, *, org_id: uuid.UUID) -> PolicyRead:
    """The org's policy, or the defaults (`is_default: true`) when it has none.

    A Core read of the row (autoflushed first, like any query): every schedule run starts here,
    and the ORM's load of an entity it then only copies cost more than the statement.
    """
    row = session.execute(_POLICY_ROW, {"org_id": org_id}).first()
    if row is None:
        policy = PolicyRead(org_id=org_id, is_default=True, **PolicyFields().model_dump())
    else:
        policy = PolicyRead.of(row, is_default=False)
    if len(_last_read) >= REMEMBERED_ORGS:
        _last_read.clear()
    _last_read[org_id] = policy
    return policy


def last_read(org_id: uuid.UUID) -> PolicyRead | None:
    """The org's policy as this process last read it, maybe changed since: only for a statement
    that checks it is still the org's (`unchanged`)."""
    return _last_read.get(org_id)


def unchanged() -> ColumnElement[bool]:
    """True in a statement while the org's policy row holds the values bound as `org_id` and
    `p_{column}` (`unchanged_params`). Not for the defaults: a row may appear.

    Over a short alias and bind names: psycopg re-parses a statement longer than 4 kB on every
    execution, and the deduped schedule run's statement that carries this would be."""
    table = _policies.alias("p")
    same = [table.c[f] == bindparam(f"p_{f}", type_=table.c[f].type) for f in GUARDED]
    return exists().where(table.c.org_id == bindparam("org_id", type_=table.c.org_id.type), *same)


def unchanged_params(policy: PolicyRead) -> dict[str, Any]:
    return {f"p_{f}": getattr(policy, f) for f in GUARDED}


def promotion_scope(
    policy: PolicyRead, *, min_drift: str | None, limit: int | None
) -> tuple[str, int]:
    """What a promotion scans: the values asked for, else the policy's (its defaults when unset)."""
    return min_drift or policy.min_drift, limit or policy.scan_limit


def update_policy(
    session: Session, *, org_id: uuid.UUID, body: PolicyUpdate, now: datetime
) -> PolicyRead:
    """Upsert: given fields replace the current (or default) values, the rest stay."""
    current = effective_policy(session, org_id=org_id)
    changes = {
        k: v
        for k, v in body.model_dump(exclude_unset=True, exclude={"org_id"}).items()
        if v is not None
    }
    merged = PolicyFields(**{**current.model_dump(include=set(FIELDS)), **changes})
    row = session.get(DriftPolicy, org_id)
    if row is None:
        try:
            with (
                session.begin_nested()
            ):  # a concurrent first write wins the insert; we update after it
                session.add(
                    DriftPolicy(
                        org_id=org_id, created_at=now, updated_at=now, **merged.model_dump()
                    )
                )
            return effective_policy(session, org_id=org_id)
        except IntegrityError:
            row = session.get(DriftPolicy, org_id)
            if row is None:
                raise
    for name, value in merged.model_dump().items():
        setattr(row, name, value)
    row.updated_at = now
    session.flush()
    return effective_policy(session, org_id=org_id)
