"""retention indexes: the worker prunes old rows oldest first without scanning whole tables

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_notification_outbox_sent_at", "notification_outbox", "sent_at"),
    ("ix_contract_drift_notify_events_created_at", "contract_drift_notify_events", "created_at"),
    ("ix_contract_drift_trigger_runs_started_at", "contract_drift_trigger_runs", "started_at"),
)


def upgrade() -> None:
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
