"""trigger winner index: a deduped trigger finds its window's executed trigger by index

Every deduped trigger (every retry of a schedule run after the first of its window) looks up
the trigger that executed its window, by dedupe key. The window-claim index cannot serve that
lookup (it leaves out forced runs, which win a window too), so it read every trigger row: 27 ms
at 200 000 rows, and growing with the table. This partial index holds one row per executed
window.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TABLE = "contract_drift_trigger_runs"
INDEX = "ix_contract_drift_trigger_runs_executed_dedupe_key"
EXECUTED = sa.text("outcome = 'executed'")


def upgrade() -> None:
    op.create_index(
        INDEX,
        TABLE,
        ["dedupe_key", "started_at"],
        sqlite_where=EXECUTED,
        postgresql_where=EXECUTED,
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
