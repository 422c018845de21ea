"""The issue_patterns table (name fixed by the runbook)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from driftwarden.db.base import Base, id_column
from driftwarden.patterns.lifecycle import CLOSED_STATUSES

# The partial unique index's predicate; the migration that made it spells the same statuses.
_OPEN = text(f"status NOT IN ({', '.join(repr(s) for s in sorted(CLOSED_STATUSES))})")


class IssuePattern(Base):
    __tablename__ = "issue_patterns"
    __table_args__ = (
        # One open pattern per dedupe key, across processes and hosts.
        Index(
            "uq_issue_patterns_open_dedupe_key",
            "org_id",
            "dedupe_key",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
        Index(None, "org_id", "primary_tag", "status"),
        Index(None, "agent_id"),
    )

    id: Mapped[uuid.UUID] = id_column()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(500))
    primary_tag: Mapped[str] = mapped_column(String(100))
    related_tags: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str | None] = mapped_column(String(200))
    evidence: Mapped[dict[str, Any]]
    dedupe_key: Mapped[str | None] = mapped_column(String(500))
    occurrence_count: Mapped[int]
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    status_history: Mapped[list[Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
