"""Scheduler tables; names fixed by the runbook where it names them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from driftwarden.db.base import Base, id_column

# A window may hold one claimed-or-executed, non-dry-run, unforced trigger.
_CLAIMS_WINDOW = text("outcome IN ('running', 'executed') AND dry_run = false AND forced = false")
# The policy refused the trigger (status.GATED_OUTCOMES); literal, so a query with it can use the
# partial index below whatever its plan.
REFUSED = text("outcome IN ('policy_disabled', 'promotion_disabled')")
# The window's winner: literal too, for the same partial index to serve its lookup.
EXECUTED = text("outcome = 'executed'")


class DriftPolicy(Base):
    __tablename__ = "contract_drift_policies"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool]
    min_drift: Mapped[str] = mapped_column(String(16))
    promote_to_patterns: Mapped[bool]
    scan_limit: Mapped[int]
    schedule_name: Mapped[str] = mapped_column(String(64))
    schedule_window_minutes: Mapped[int]
    alert_enabled: Mapped[bool]
    alert_max_dedupe_hit_rate: Mapped[float]
    alert_min_execution_rate: Mapped[float]
    alert_cooldown_minutes: Mapped[int]
    created_at: Mapped[datetime]
    # the watchdog and the built-in scheduler read the policies changed since their last tick
    updated_at: Mapped[datetime] = mapped_column(index=True)


class TriggerRun(Base):
    __tablename__ = "contract_drift_trigger_runs"
    __table_args__ = (
        Index(
            "uq_contract_drift_trigger_runs_window_claim",
            "dedupe_key",
            unique=True,
            sqlite_where=_CLAIMS_WINDOW,
            postgresql_where=_CLAIMS_WINDOW,
        ),
        # the summary counts a schedule's triggers by outcome: from the index alone on Postgres
        Index(
            None, "org_id", "schedule_name", "started_at", postgresql_include=["outcome", "dry_run"]
        ),
        # the watchdog's tick reads the refused triggers since its last one: few, and a small index
        Index(
            "ix_contract_drift_trigger_runs_refused_started_at",
            "started_at",
            sqlite_where=REFUSED,
            postgresql_where=REFUSED,
        ),
        # every deduped trigger looks up its window's winner: one row per window, not a scan
        Index(
            "ix_contract_drift_trigger_runs_executed_dedupe_key",
            "dedupe_key",
            "started_at",
            sqlite_where=EXECUTED,
            postgresql_where=EXECUTED,
        ),
    )

    id: Mapped[uuid.UUID] = id_column()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    schedule_name: Mapped[str] = mapped_column(String(64))
    window_minutes: Mapped[int]
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    agent_id: Mapped[uuid.UUID | None]
    dedupe_key: Mapped[str] = mapped_column(String(300))
    # running | executed | deduped | failed | policy_disabled | promotion_disabled
    outcome: Mapped[str] = mapped_column(String(32))
    dry_run: Mapped[bool]
    forced: Mapped[bool]
    deduped_from_trigger_id: Mapped[uuid.UUID | None]
    request_id: Mapped[str | None] = mapped_column(String(128))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    promote_result: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(index=True)
    finished_at: Mapped[datetime | None]
    duration_ms: Mapped[float | None]


class TriggerDayCount(Base):
    """Real and dry-run triggers of one org, schedule, UTC day and outcome, counted as they are
    written, so a summary over many days adds a row per day and outcome instead of counting every
    trigger.

    Kept by the database (revision 0009): row triggers on `contract_drift_trigger_runs` add each
    settled row in the statement that writes it (never a `running` claim, its transaction's own
    until it settles) and take back a deleted or re-settled one. `last_started_at` only grows: a
    trigger leaves its day's count only by deletion (retention, oldest first; the org's), so while
    `trigger_count` is above 0 it is the newest remaining trigger's.
    docs/reference/scheduler.md#trigger-summary
    """

    __tablename__ = "contract_drift_trigger_day_counts"
    # the summary over every schedule of an org reads its days; retention drops the oldest days
    __table_args__ = (Index(None, "org_id", "day"), Index(None, "day"))

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    schedule_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    dry_run: Mapped[bool] = mapped_column(primary_key=True)
    trigger_count: Mapped[int]
    last_started_at: Mapped[datetime]


class TriggerAlertState(Base):
    """Cooldown state: one row per org and schedule.

    Runbook: contract_drift_trigger_alert_state.
    """

    __tablename__ = "contract_drift_trigger_alert_state"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    schedule_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    alert_fingerprint: Mapped[str | None] = mapped_column(String(64))
    last_notified_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]


class NotifyEvent(Base):
    __tablename__ = "contract_drift_notify_events"
    __table_args__ = (Index(None, "org_id", "schedule_name", "created_at"),)

    id: Mapped[uuid.UUID] = id_column()
    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    schedule_name: Mapped[str] = mapped_column(String(64))
    # sent | failed | suppressed | skipped | dry_run
    outcome: Mapped[str] = mapped_column(String(16))
    event_type: Mapped[str] = mapped_column(String(100))
    anomaly_detected: Mapped[bool]
    reasons: Mapped[list[Any]]
    fingerprint: Mapped[str] = mapped_column(String(64))
    outbox_id: Mapped[uuid.UUID | None]
    escalation_pattern_id: Mapped[uuid.UUID | None]
    error: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(index=True)


class ScheduleWatchState(Base):
    """What the watchdog last said about a schedule, so each missed/recovered alert goes once."""

    __tablename__ = "contract_drift_schedule_watch_state"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True
    )
    schedule_name: Mapped[str] = mapped_column(String(64), primary_key=True)
    # new | up | late | down | disabled: the status the watchdog last acted on (moved by
    # conditional UPDATEs); indexed for the few not `up` a tick looks for executions of
    last_status: Mapped[str] = mapped_column(String(16), index=True)
    down_since: Mapped[datetime | None]
    # the current outage's missed alert: queued | sent | failed | suppressed | skipped
    missed_alert: Mapped[str | None] = mapped_column(String(16))
    # cooldown of the missed alert (the rules of
    # docs/reference/scheduler.md#anomaly-notify,
    # kept apart from the anomaly's cooldown)
    alert_fingerprint: Mapped[str | None] = mapped_column(String(64))
    missed_notified_at: Mapped[datetime | None]
    recovered_notified_at: Mapped[datetime | None]
    # the next moment time alone changes the schedule's status (None: only a write can); the
    # watchdog reads the rows due (docs/reference/scheduler.md#watchdog)
    next_check_at: Mapped[datetime | None] = mapped_column(index=True)
    updated_at: Mapped[datetime]
