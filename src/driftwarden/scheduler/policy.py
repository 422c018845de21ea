"""The per-org drift policy. Callers own the transaction.

docs/reference/scheduler.md#drift-policy
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from driftwarden.scheduler.models import DriftPolicy
from driftwarden.scheduler.schemas import PolicyFields, PolicyRead, PolicyUpdate

FIELDS = tuple(PolicyFields.model_fields)
_policies = DriftPolicy.__table__
_POLICY_ROW = select(_policies).where(
    _policies.c.org_id == bindparam("org_id", type_=_policies.c.org_id.type)
)


def effective_policy(session: Session, *, org_id: uuid.UUID) -> PolicyRead:
    """The org's policy, or the defaults (`is_default: true`) when it has none.

    A Core read of the row (autoflushed first, like any query): every schedule run starts here,
    and the ORM's load of an entity it then only copies cost more than the statement.
    """
    row = session.execute(_POLICY_ROW, {"org_id": org_id}).first()
    if row is None:
        return PolicyRead(org_id=org_id, is_default=True, **PolicyFields().model_dump())
    return PolicyRead.of(row, is_default=False)


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
