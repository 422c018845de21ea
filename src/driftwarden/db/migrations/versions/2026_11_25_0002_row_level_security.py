"""row level security: every driftwarden table hidden from Supabase's Data API roles

Enables row-level security, with no policy, on every table driftwarden creates, so that the
`anon` and `authenticated` roles Supabase's Data API (PostgREST) connects as see and change
nothing, even with the SELECT/INSERT/... grants Supabase gives them by default. The tables'
owner (the role driftwarden migrates and connects as) bypasses RLS, so the app is unaffected.
SQLite has no RLS: there the migration does nothing.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Every table of revision 0001, plus Alembic's own. A table added later needs RLS in its own
# migration; tests/production/test_row_level_security.py fails while one is missing.
TABLES = (
    "agents",
    "alembic_version",
    "api_audit_logs",
    "api_keys",
    "contract_bindings",
    "contract_definitions",
    "contract_drift_notify_events",
    "contract_drift_policies",
    "contract_drift_schedule_watch_state",
    "contract_drift_trigger_alert_state",
    "contract_drift_trigger_runs",
    "idempotency_records",
    "issue_patterns",
    "notification_endpoints",
    "notification_outbox",
    "orgs",
)


def _set_rls(action: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TABLES:
        op.execute(f'ALTER TABLE "{table}" {action} ROW LEVEL SECURITY')


def upgrade() -> None:
    _set_rls("ENABLE")


def downgrade() -> None:
    _set_rls("DISABLE")
