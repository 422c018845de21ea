"""watchdog next check: each schedule's next status change by time, and the indexes a tick reads by

The watchdog reads only the watch-state rows due by `next_check_at`, the few not `up`
(`last_status`), and the policies changed since its last tick (`updated_at`, which the built-in
scheduler's tracker reads too), and the refused triggers since (a partial index), instead of
every org's schedule each minute. Existing rows start
with no next check: the first (full) tick of each worker fills it in.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

WATCH_STATE = "contract_drift_schedule_watch_state"
INDEXES = (
    (f"ix_{WATCH_STATE}_next_check_at", WATCH_STATE, "next_check_at"),
    (f"ix_{WATCH_STATE}_last_status", WATCH_STATE, "last_status"),
    ("ix_contract_drift_policies_updated_at", "contract_drift_policies", "updated_at"),
)


REFUSED_INDEX = "ix_contract_drift_trigger_runs_refused_started_at"
REFUSED = sa.text("outcome IN ('policy_disabled', 'promotion_disabled')")


def upgrade() -> None:
    with op.batch_alter_table(WATCH_STATE) as batch:
        batch.add_column(sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=True))
    for name, table, column in INDEXES:
        op.create_index(name, table, [column])
    op.create_index(
        REFUSED_INDEX,
        "contract_drift_trigger_runs",
        ["started_at"],
        sqlite_where=REFUSED,
        postgresql_where=REFUSED,
    )


def downgrade() -> None:
    op.drop_index(REFUSED_INDEX, table_name="contract_drift_trigger_runs")
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
    with op.batch_alter_table(WATCH_STATE) as batch:
        batch.drop_column("next_check_at")
