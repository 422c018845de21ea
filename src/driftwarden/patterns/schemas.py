"""Pattern and promotion bodies: what a client sends apart from what it reads back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self, get_args

from pydantic import BaseModel, ConfigDict, Field

from driftwarden.contracts.drift import MinDrift
from driftwarden.patterns import lifecycle
from driftwarden.patterns.lifecycle import PatternStatus
from driftwarden.schemas import Boolean, Integer, ReadModel

Priority = Literal["critical", "high", "medium", "low"]
PRIORITIES: tuple[str, ...] = get_args(Priority)
TAG_PATTERN = r"^[a-z0-9][a-z0-9_.:-]{0,99}$"
Tag = Annotated[str, Field(pattern=TAG_PATTERN)]


class PatternCreate(BaseModel):
    """POST /agents/{agent_id}/patterns: the agent comes from the path."""

    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = None
    title: str = Field(min_length=1, max_length=500)
    primary_tag: str = Field(pattern=TAG_PATTERN)
    related_tags: list[Tag] = Field(default_factory=list, max_length=50)
    priority: Priority = "medium"
    owner: str | None = Field(default=None, min_length=1, max_length=200)
    evidence: dict[str, Any] = Field(default_factory=dict)
    dedupe_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="At most one open pattern per org and dedupe_key.",
    )
    note: str | None = Field(
        default=None, max_length=2000, description="Recorded in the first history entry."
    )


class OrgPatternCreate(PatternCreate):
    """POST /patterns: agent_id null makes an org-level pattern."""

    agent_id: uuid.UUID | None = None


class PatternUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, min_length=1, max_length=500)
    priority: Priority | None = None
    owner: str | None = Field(
        default=None, max_length=200, description="null or empty clears the owner."
    )
    related_tags: list[Tag] | None = Field(default=None, max_length=50)
    status: PatternStatus | None = None
    note: str | None = Field(
        default=None, max_length=2000, description="Why the status changed (history)."
    )
    force: Boolean = Field(
        default=False, description="Allow a jump the lifecycle forbids (global admins only)."
    )


class HistoryEntry(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)
    from_: PatternStatus | None = Field(alias="from")
    to: PatternStatus
    at: datetime
    by_api_key_id: uuid.UUID | None = None
    note: str | None = None
    forced: bool = False


class PatternRead(ReadModel):
    id: uuid.UUID
    org_id: uuid.UUID
    agent_id: uuid.UUID | None
    title: str
    primary_tag: str
    related_tags: list[str]
    status: PatternStatus
    is_open: bool
    priority: Priority
    owner: str | None
    evidence: dict[str, Any]
    dedupe_key: str | None
    occurrence_count: int
    first_seen_at: datetime
    last_seen_at: datetime
    status_history: list[HistoryEntry]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: object, **derived: Any) -> Self:
        """`is_open` follows from the status (docs/reference/resources.md, patterns)."""
        is_open = lifecycle.is_open(row.status)  # type: ignore[attr-defined]
        return super().of(row, is_open=is_open, **derived)


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    min_drift: MinDrift | None = Field(
        default=None, description="Default: the policy's, else breaking."
    )
    limit: Integer | None = Field(
        default=None, ge=1, le=1000, description="Default: the policy's scan_limit, else 200."
    )
    dry_run: Boolean = False
    auto_resolve: Boolean = True


class QueuedNotification(BaseModel):
    event_type: str
    queued: bool
    outbox_ids: list[uuid.UUID]
    skipped_reason: (
        Literal["dry_run", "nothing_created", "nothing_resolved", "no_destination"] | None
    ) = None


class PromotionNotification(QueuedNotification):
    status_changed: QueuedNotification | None = Field(
        default=None,
        description="The issue_pattern.status_changed message for auto-resolved patterns.",
    )


class PromoteResult(BaseModel):
    org_id: uuid.UUID
    agent_id: uuid.UUID | None
    min_drift: MinDrift
    limit: int
    dry_run: bool
    auto_resolve: bool
    scanned_item_count: int
    eligible_item_count: int
    created_pattern_count: int
    reused_pattern_count: int
    resolved_pattern_count: int
    pattern_ids: list[uuid.UUID]
    resolved_pattern_ids: list[uuid.UUID]
    notification: PromotionNotification
