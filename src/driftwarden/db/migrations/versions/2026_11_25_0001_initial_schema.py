"""initial schema: every table of every domain

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_audit_logs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=True),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("idempotent_replayed", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_audit_logs")),
    )
    with op.batch_alter_table("api_audit_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_audit_logs_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_api_audit_logs_org_id_created_at"),
            ["org_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_api_audit_logs_request_id"), ["request_id"], unique=False
        )

    op.create_table(
        "idempotency_records",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("path", sa.String(length=500), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column("response_headers", JSON, nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint(
            "api_key_id",
            "method",
            "path",
            "idempotency_key",
            name=op.f("uq_idempotency_records_api_key_id_method_path_idempotency_key"),
        ),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_idempotency_records_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "orgs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orgs")),
        sa.UniqueConstraint("slug", name=op.f("uq_orgs_slug")),
    )
    op.create_table(
        "agents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("agent_type", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_agents_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("org_id", "external_id", name=op.f("uq_agents_org_id_external_id")),
    )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agents_org_id_name"), ["org_id", "name"], unique=False)

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("key_prefix", sa.String(length=12), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_api_key_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_api_keys_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_org_id"), ["org_id"], unique=False)

    op.create_table(
        "contract_definitions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("definition_type", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("contract_version", sa.String(length=256), nullable=False),
        sa.Column("default_config", JSON, nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_contract_definitions_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_definitions")),
        sa.UniqueConstraint(
            "org_id",
            "definition_type",
            "key",
            name=op.f("uq_contract_definitions_org_id_definition_type_key"),
        ),
    )
    with op.batch_alter_table("contract_definitions", schema=None) as batch_op:
        batch_op.create_index(
            "uq_contract_definitions_builtin_type_key",
            ["definition_type", "key"],
            unique=True,
            sqlite_where=sa.text("org_id IS NULL"),
            postgresql_where=sa.text("org_id IS NULL"),
        )

    op.create_table(
        "contract_drift_notify_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("schedule_name", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("anomaly_detected", sa.Boolean(), nullable=False),
        sa.Column("reasons", JSON, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("outbox_id", sa.Uuid(), nullable=True),
        sa.Column("escalation_pattern_id", sa.Uuid(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_contract_drift_notify_events_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_drift_notify_events")),
    )
    with op.batch_alter_table("contract_drift_notify_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contract_drift_notify_events_org_id_schedule_name_created_at"),
            ["org_id", "schedule_name", "created_at"],
            unique=False,
        )

    op.create_table(
        "contract_drift_policies",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("min_drift", sa.String(length=16), nullable=False),
        sa.Column("promote_to_patterns", sa.Boolean(), nullable=False),
        sa.Column("scan_limit", sa.Integer(), nullable=False),
        sa.Column("schedule_name", sa.String(length=64), nullable=False),
        sa.Column("schedule_window_minutes", sa.Integer(), nullable=False),
        sa.Column("alert_enabled", sa.Boolean(), nullable=False),
        sa.Column("alert_max_dedupe_hit_rate", sa.Double(), nullable=False),
        sa.Column("alert_min_execution_rate", sa.Double(), nullable=False),
        sa.Column("alert_cooldown_minutes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_contract_drift_policies_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_contract_drift_policies")),
    )
    op.create_table(
        "contract_drift_schedule_watch_state",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("schedule_name", sa.String(length=64), nullable=False),
        sa.Column("last_status", sa.String(length=16), nullable=False),
        sa.Column("down_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("missed_alert", sa.String(length=16), nullable=True),
        sa.Column("alert_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("missed_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recovered_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_contract_drift_schedule_watch_state_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "schedule_name", name=op.f("pk_contract_drift_schedule_watch_state")
        ),
    )
    op.create_table(
        "contract_drift_trigger_alert_state",
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("schedule_name", sa.String(length=64), nullable=False),
        sa.Column("alert_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("last_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_contract_drift_trigger_alert_state_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "schedule_name", name=op.f("pk_contract_drift_trigger_alert_state")
        ),
    )
    op.create_table(
        "contract_drift_trigger_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("schedule_name", sa.String(length=64), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=300), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("deduped_from_trigger_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("promote_result", JSON, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_ms", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_contract_drift_trigger_runs_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_drift_trigger_runs")),
    )
    with op.batch_alter_table("contract_drift_trigger_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contract_drift_trigger_runs_org_id_schedule_name_started_at"),
            ["org_id", "schedule_name", "started_at"],
            unique=False,
        )
        batch_op.create_index(
            "uq_contract_drift_trigger_runs_window_claim",
            ["dedupe_key"],
            unique=True,
            sqlite_where=sa.text(
                "outcome IN ('running', 'executed') AND dry_run = false AND forced = false"
            ),
            postgresql_where=sa.text(
                "outcome IN ('running', 'executed') AND dry_run = false AND forced = false"
            ),
        )

    op.create_table(
        "notification_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("event_types", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("secret", sa.String(length=200), nullable=False),
        sa.Column("previous_secret", sa.String(length=200), nullable=True),
        sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_notification_endpoints_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_endpoints")),
    )
    with op.batch_alter_table("notification_endpoints", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_endpoints_org_id"), ["org_id"], unique=False
        )

    op.create_table(
        "contract_bindings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("definition_id", sa.Uuid(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("definition_contract_version", sa.String(length=256), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_contract_bindings_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["definition_id"],
            ["contract_definitions.id"],
            name=op.f("fk_contract_bindings_definition_id_contract_definitions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_contract_bindings_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_bindings")),
        sa.UniqueConstraint(
            "agent_id", "definition_id", name=op.f("uq_contract_bindings_agent_id_definition_id")
        ),
    )
    with op.batch_alter_table("contract_bindings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_contract_bindings_definition_id"), ["definition_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_contract_bindings_org_id_agent_id"), ["org_id", "agent_id"], unique=False
        )

    op.create_table(
        "issue_patterns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("primary_tag", sa.String(length=100), nullable=False),
        sa.Column("related_tags", JSON, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("priority", sa.String(length=16), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("evidence", JSON, nullable=False),
        sa.Column("dedupe_key", sa.String(length=500), nullable=True),
        sa.Column("occurrence_count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_history", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_issue_patterns_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], name=op.f("fk_issue_patterns_org_id_orgs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issue_patterns")),
    )
    with op.batch_alter_table("issue_patterns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issue_patterns_agent_id"), ["agent_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_issue_patterns_org_id_primary_tag_status"),
            ["org_id", "primary_tag", "status"],
            unique=False,
        )
        batch_op.create_index(
            "uq_issue_patterns_open_dedupe_key",
            ["org_id", "dedupe_key"],
            unique=True,
            sqlite_where=sa.text("status NOT IN ('resolved', 'wont_fix')"),
            postgresql_where=sa.text("status NOT IN ('resolved', 'wont_fix')"),
        )

    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("destination", sa.String(length=16), nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=True),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=2000), nullable=True),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dead_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["notification_endpoints.id"],
            name=op.f("fk_notification_outbox_endpoint_id_notification_endpoints"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            name=op.f("fk_notification_outbox_org_id_orgs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
        sa.UniqueConstraint("message_id", name=op.f("uq_notification_outbox_message_id")),
    )
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notification_outbox_org_id_status_event_type"),
            ["org_id", "status", "event_type"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_notification_outbox_status_next_attempt_at"),
            ["status", "next_attempt_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_outbox_status_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_notification_outbox_org_id_status_event_type"))

    op.drop_table("notification_outbox")
    with op.batch_alter_table("issue_patterns", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_issue_patterns_open_dedupe_key",
            sqlite_where=sa.text("status NOT IN ('resolved', 'wont_fix')"),
            postgresql_where=sa.text("status NOT IN ('resolved', 'wont_fix')"),
        )
        batch_op.drop_index(batch_op.f("ix_issue_patterns_org_id_primary_tag_status"))
        batch_op.drop_index(batch_op.f("ix_issue_patterns_agent_id"))

    op.drop_table("issue_patterns")
    with op.batch_alter_table("contract_bindings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contract_bindings_org_id_agent_id"))
        batch_op.drop_index(batch_op.f("ix_contract_bindings_definition_id"))

    op.drop_table("contract_bindings")
    with op.batch_alter_table("notification_endpoints", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_endpoints_org_id"))

    op.drop_table("notification_endpoints")
    with op.batch_alter_table("contract_drift_trigger_runs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_contract_drift_trigger_runs_window_claim",
            sqlite_where=sa.text(
                "outcome IN ('running', 'executed') AND dry_run = false AND forced = false"
            ),
            postgresql_where=sa.text(
                "outcome IN ('running', 'executed') AND dry_run = false AND forced = false"
            ),
        )
        batch_op.drop_index(
            batch_op.f("ix_contract_drift_trigger_runs_org_id_schedule_name_started_at")
        )

    op.drop_table("contract_drift_trigger_runs")
    op.drop_table("contract_drift_trigger_alert_state")
    op.drop_table("contract_drift_schedule_watch_state")
    op.drop_table("contract_drift_policies")
    with op.batch_alter_table("contract_drift_notify_events", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_contract_drift_notify_events_org_id_schedule_name_created_at")
        )

    op.drop_table("contract_drift_notify_events")
    with op.batch_alter_table("contract_definitions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_contract_definitions_builtin_type_key",
            sqlite_where=sa.text("org_id IS NULL"),
            postgresql_where=sa.text("org_id IS NULL"),
        )

    op.drop_table("contract_definitions")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_org_id"))

    op.drop_table("api_keys")
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agents_org_id_name"))

    op.drop_table("agents")
    op.drop_table("orgs")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_records_expires_at"))

    op.drop_table("idempotency_records")
    with op.batch_alter_table("api_audit_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_audit_logs_request_id"))
        batch_op.drop_index(batch_op.f("ix_api_audit_logs_org_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_api_audit_logs_created_at"))

    op.drop_table("api_audit_logs")
