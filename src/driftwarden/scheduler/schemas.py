"""Scheduler bodies: what a client sends apart from what it reads back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from driftwarden.contracts.drift import MinDrift
from driftwarden.scheduler.anomaly import NotifyOutcome, WouldOutcome
from driftwarden.scheduler.status import ScheduleState
from driftwarden.scheduler.windows import SCHEDULE_NAME_PATTERN, TriggerOutcome
from driftwarden.schemas import Boolean, Integer, Number, ReadModel


class PolicyFields(BaseModel):
    enabled: bool = False
    min_drift: MinDrift = "breaking"
    promote_to_patterns: bool = True
    scan_limit: int = Field(default=200, ge=1, le=1000)
    schedule_name: str = Field(default="daily", pattern=SCHEDULE_NAME_PATTERN)
    schedule_window_minutes: int = Field(default=1440, ge=5, le=10080)
    alert_enabled: bool = False
    alert_max_dedupe_hit_rate: float = Field(default=0.7, ge=0, le=1)
    alert_min_execution_rate: float = Field(default=0.5, ge=0, le=1)
    alert_cooldown_minutes: int = Field(default=60, ge=0, le=10080)


class PolicyUpdate(BaseModel):
    """Fields left out keep their current (or default) value."""

    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = None
    enabled: Boolean | None = None
    min_drift: MinDrift | None = None
    promote_to_patterns: Boolean | None = None
    scan_limit: Integer | None = Field(default=None, ge=1, le=1000)
    schedule_name: str | None = Field(default=None, pattern=SCHEDULE_NAME_PATTERN)
    schedule_window_minutes: Integer | None = Field(default=None, ge=5, le=10080)
    alert_enabled: Boolean | None = None
    alert_max_dedupe_hit_rate: Number | None = Field(default=None, ge=0, le=1)
    alert_min_execution_rate: Number | None = Field(default=None, ge=0, le=1)
    alert_cooldown_minutes: Integer | None = Field(default=None, ge=0, le=10080)


class PolicyRead(PolicyFields, ReadModel):
    org_id: uuid.UUID
    is_default: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None


class TriggerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = None
    schedule_name: str | None = Field(default=None, pattern=SCHEDULE_NAME_PATTERN)
    window_minutes: Integer | None = Field(default=None, ge=5, le=10080)
    dry_run: Boolean = False
    force: Boolean = False
    agent_id: uuid.UUID | None = None
    min_drift: MinDrift | None = None
    limit: Integer | None = Field(default=None, ge=1, le=1000)


class TriggerRead(ReadModel):
    trigger_id: uuid.UUID
    outcome: TriggerOutcome
    executed: bool
    deduped: bool
    dry_run: bool
    forced: bool
    schedule_name: str
    window_minutes: int
    window_start: datetime
    window_end: datetime
    dedupe_key: str
    deduped_from_trigger_id: uuid.UUID | None
    promote: dict[str, Any] | None
    error: str | None


class TriggerItem(ReadModel):
    id: uuid.UUID
    schedule_name: str
    window_minutes: int
    window_start: datetime
    agent_id: uuid.UUID | None
    dedupe_key: str
    outcome: str
    dry_run: bool
    forced: bool
    deduped_from_trigger_id: uuid.UUID | None
    request_id: str | None
    idempotency_key: str | None
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_ms: float | None


class SummaryCore(BaseModel):
    """The trigger summary's counts and rates, without the recent items.

    What the notify response embeds.
    docs/reference/scheduler.md#trigger-summary
    """

    org_id: uuid.UUID
    schedule_name: str
    window_days: int
    trigger_count: int
    executed_count: int
    deduped_count: int
    failed_count: int
    policy_disabled_count: int
    promotion_disabled_count: int
    dry_run_count: int
    execution_rate: float | None
    dedupe_hit_rate: float | None
    last_triggered_at: datetime | None
    last_executed_at: datetime | None


class ScheduleStatusRead(BaseModel):
    """Whether a schedule still runs; `watched` when the watchdog alerts on it.

    docs/reference/scheduler.md#schedule-status
    """

    schedule_name: str
    status: ScheduleState
    window_minutes: int
    grace_minutes: float
    last_executed_at: datetime | None
    last_window_start: datetime | None
    expected_by: datetime | None = Field(
        description=(
            "When the next execution is due: `late` after it, "
            "`down` grace_minutes later; null while `new`."
        )
    )
    missed_windows: int | None = Field(
        description="Whole windows since the last execution; null while `new`."
    )
    is_policy_schedule: bool
    watched: bool = Field(
        description="The policy is enabled and this is its schedule: the watchdog alerts on it."
    )
    watchdog_status: str | None = Field(
        description="What the watchdog last recorded (its alerting state)."
    )
    down_since: datetime | None
    missed_notified_at: datetime | None
    recovered_notified_at: datetime | None


class ScheduleStatusList(BaseModel):
    org_id: uuid.UUID
    policy_enabled: bool
    policy_schedule_name: str
    items: list[ScheduleStatusRead]
    count: int


class SummaryRead(SummaryCore):
    items: list[TriggerItem] | None = None
    schedule_status: ScheduleStatusRead | None = Field(
        default=None,
        description=(
            "docs/reference/scheduler.md#schedule-status status of the schedule named, "
            "or of the policy's schedule for `_all`."
        ),
    )


class NotifyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID | None = None
    schedule_name: str | None = Field(default=None, pattern=SCHEDULE_NAME_PATTERN)
    agent_id: uuid.UUID | None = None
    window_days: Integer = Field(default=30, ge=1, le=365)
    dry_run: Boolean = True
    force_notify: Boolean = False


class Delivery(BaseModel):
    outbox_id: uuid.UUID | None
    message_id: str | None
    destination: str | None
    sent: bool
    status_code: int | None
    error: str | None
    attempt_count: int


class NotificationRead(BaseModel):
    sent: bool
    event_type: str
    outbox_id: uuid.UUID | None
    message_id: str | None
    attempt_count: int
    status_code: int | None
    error: str | None
    deliveries: list[Delivery]


class EscalationRead(ReadModel):
    id: uuid.UUID
    created: bool
    reused: bool
    primary_tag: str
    priority: str
    status: str


class Thresholds(BaseModel):
    alert_enabled: bool
    alert_max_dedupe_hit_rate: float
    alert_min_execution_rate: float
    alert_cooldown_minutes: int


class NotifyRead(BaseModel):
    anomaly_detected: bool
    reasons: list[str]
    fingerprint: str
    outcome: NotifyOutcome
    would_outcome: WouldOutcome = Field(
        description="What a non-dry run would have done (equals the decision on real runs)."
    )
    notified: bool
    suppressed: bool
    cooldown_until: datetime | None
    notification: NotificationRead | None
    escalation_pattern: EscalationRead | None
    summary: SummaryCore
    thresholds: Thresholds


class AlertDeliveryRead(BaseModel):
    org_id: uuid.UUID
    schedule_name: str
    window_days: int
    total_notify_events: int
    sent_count: int
    failed_count: int
    suppressed_count: int
    skipped_count: int
    dry_run_count: int
    last_event_at: datetime | None
    last_sent_at: datetime | None
    last_failed_at: datetime | None
    last_suppressed_at: datetime | None
    last_notified_at: datetime | None
    alert_fingerprint: str | None


class ScheduleRunCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    org_id: uuid.UUID
    schedule_name: str | None = Field(default=None, pattern=SCHEDULE_NAME_PATTERN)
    window_minutes: Integer | None = Field(default=None, ge=5, le=10080)
    summary_window_days: Integer = Field(default=30, ge=1, le=365)
    dry_run: Boolean = False
    force: Boolean = False
    force_notify: Boolean = False
    agent_id: uuid.UUID | None = Field(
        default=None, description="Scopes the trigger; none: the whole org."
    )
    escalation_agent_id: uuid.UUID | None = Field(
        default=None,
        description="The agent an escalation pattern is filed on; left out: `agent_id`, "
        "null: the org.",
    )
    min_drift: MinDrift | None = None
    limit: Integer | None = Field(default=None, ge=1, le=1000)

    @model_validator(mode="after")
    def _escalate_to_the_trigger_agent(self) -> ScheduleRunCreate:
        """Left out, the escalation target is the agent the trigger is scoped to."""
        if "escalation_agent_id" not in self.model_fields_set:
            self.escalation_agent_id = self.agent_id
        return self


class ScheduleRunRead(BaseModel):
    org_id: uuid.UUID
    agent_id: uuid.UUID | None
    escalation_agent_id: uuid.UUID | None
    schedule_name: str
    window_minutes: int
    summary_window_days: int
    dry_run: bool
    trigger: TriggerRead
    notify: NotifyRead
