"""drift scan indexes: count per version pair and page in agent-name order without sorting it all

ix_contract_bindings_drift_groups lets the scan's grouped count be one index-only walk in group
order (no hash of every row); ix_agents_org_id_name_id replaces ix_agents_org_id_name so the
page query walks agents in (name, id) order without reading the agents' rows and stops at LIMIT.
Index-only scans need the visibility map that (auto)vacuum keeps; until then Postgres falls
back to the plans it used before.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DRIFT_GROUPS = ("org_id", "definition_id", "definition_contract_version", "enabled")


def upgrade() -> None:
    op.create_index("ix_contract_bindings_drift_groups", "contract_bindings", list(DRIFT_GROUPS))
    op.create_index("ix_agents_org_id_name_id", "agents", ["org_id", "name", "id"])
    op.drop_index("ix_agents_org_id_name", table_name="agents")


def downgrade() -> None:
    op.create_index("ix_agents_org_id_name", "agents", ["org_id", "name"])
    op.drop_index("ix_agents_org_id_name_id", table_name="agents")
    op.drop_index("ix_contract_bindings_drift_groups", table_name="contract_bindings")
