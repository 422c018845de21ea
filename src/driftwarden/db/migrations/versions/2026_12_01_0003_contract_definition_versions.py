"""contract definition versions: every version a definition has had, with its config schema

Adds `contract_definition_versions` (unique per definition and version) and the current
version's `config_schema` on `contract_definitions`, and backfills one version row for every
existing definition from its current version and default config. Row-level security is enabled
on the new table exactly as revision 0002 does for the others.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
SCHEMA_JSON = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)
# Tables this revision creates; tests/production/test_row_level_security.py reads this too.
TABLES = ("contract_definition_versions",)
BATCH = 1000


def _create_table() -> None:
    op.create_table(
        "contract_definition_versions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("org_id", sa.Uuid(), nullable=True),
        sa.Column("definition_id", sa.Uuid(), nullable=False),
        sa.Column("contract_version", sa.String(length=256), nullable=False),
        sa.Column("config_schema", SCHEMA_JSON, nullable=True),
        sa.Column("default_config", JSON, nullable=False),
        sa.Column("changelog", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_api_key_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["orgs.id"],
            ondelete="CASCADE",
            name=op.f("fk_contract_definition_versions_org_id_orgs"),
        ),
        sa.ForeignKeyConstraint(
            ["definition_id"],
            ["contract_definitions.id"],
            ondelete="CASCADE",
            name=op.f("fk_contract_definition_versions_definition_id_contract_definitions"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_api_key_id"],
            ["api_keys.id"],
            ondelete="SET NULL",
            name=op.f("fk_contract_definition_versions_created_by_api_key_id_api_keys"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_definition_versions")),
        sa.UniqueConstraint(
            "definition_id",
            "contract_version",
            name=op.f("uq_contract_definition_versions_definition_id_contract_version"),
        ),
    )


def _backfill() -> None:
    """One version row per existing definition: its current version, as it stands today."""
    definitions = sa.table(
        "contract_definitions",
        sa.column("id", sa.Uuid()),
        sa.column("org_id", sa.Uuid()),
        sa.column("contract_version", sa.String()),
        sa.column("default_config", JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    versions = sa.table(
        "contract_definition_versions",
        sa.column("id", sa.Uuid()),
        sa.column("org_id", sa.Uuid()),
        sa.column("definition_id", sa.Uuid()),
        sa.column("contract_version", sa.String()),
        sa.column("config_schema", SCHEMA_JSON),
        sa.column("default_config", JSON),
        sa.column("changelog", sa.Text()),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    bind = op.get_bind()
    found = bind.execute(sa.select(definitions).order_by(definitions.c.id)).all()
    for start in range(0, len(found), BATCH):
        rows = found[start : start + BATCH]
        op.bulk_insert(
            versions,
            [
                {
                    "id": uuid.uuid4(),
                    "org_id": r.org_id,
                    "definition_id": r.id,
                    "contract_version": r.contract_version,
                    "config_schema": None,
                    "default_config": r.default_config,
                    "changelog": None,
                    "created_at": r.created_at,
                }
                for r in rows
            ],
        )


def upgrade() -> None:
    _create_table()
    with op.batch_alter_table("contract_definitions") as batch_op:
        batch_op.add_column(sa.Column("config_schema", SCHEMA_JSON, nullable=True))
    _backfill()
    if op.get_bind().dialect.name == "postgresql":
        for table in TABLES:
            op.execute(f'ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY')


def downgrade() -> None:
    with op.batch_alter_table("contract_definitions") as batch_op:
        batch_op.drop_column("config_schema")
    op.drop_table("contract_definition_versions")
