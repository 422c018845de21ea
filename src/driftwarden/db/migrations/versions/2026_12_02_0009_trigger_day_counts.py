"""trigger day counts: a schedule's triggers counted per UTC day as they are written

Every schedule run returns the summary of its schedule's last 30 days (window_days, up to 365),
and counted every trigger row of those days to make it: 8 640 rows for a scheduler retrying every
5 minutes, on every call. `contract_drift_trigger_day_counts` holds one row per org, schedule,
UTC day, outcome and dry_run, kept by the database itself, so the summary counts trigger rows only
for its first (partial) day and adds one count row per day and outcome for the days after it.

The counts are kept by row triggers on `contract_drift_trigger_runs`, for every writer alike (the
API, retention, an org's deletion, an operator's SQL): a settled row adds one to its day's count
in the statement that writes it, a deleted or re-settled one takes it back. A transaction thus
sees its own triggers counted, and a snapshot sees a trigger exactly when it sees its count.
- A `running` claim is not counted: it is its transaction's own until it settles as `executed`
  or `failed` at the end of the promotion, so a count row is never locked while a promotion
  runs, only from a trigger's settling to its commit.
- A take-back never inserts: an org's deletion may have removed its counts by cascade first.
- Postgres: one PL/pgSQL trigger function; SQLite: four row triggers.

Existing triggers are counted once, here. Retention drops the counts of days past it (by the
`day` index). The table gets row-level security with no policy on
Postgres, like every other table (revision 0002).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLE = "contract_drift_trigger_day_counts"
TABLES = (TABLE,)
RUNS = "contract_drift_trigger_runs"
KEY = "org_id, schedule_name, day, outcome, dry_run"
FUNCTION = "contract_drift_trigger_day_count"

POSTGRES_DAY = "(({row}.started_at AT TIME ZONE 'UTC')::date)"
POSTGRES_FUNCTION = f"""
CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.outcome <> 'running' THEN
        UPDATE {TABLE} SET trigger_count = trigger_count - 1
        WHERE org_id = OLD.org_id AND schedule_name = OLD.schedule_name
          AND day = {POSTGRES_DAY.format(row="OLD")} AND outcome = OLD.outcome
          AND dry_run = OLD.dry_run;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.outcome <> 'running' THEN
        INSERT INTO {TABLE} AS c ({KEY}, trigger_count, last_started_at)
        VALUES (NEW.org_id, NEW.schedule_name, {POSTGRES_DAY.format(row="NEW")}, NEW.outcome,
                NEW.dry_run, 1, NEW.started_at)
        ON CONFLICT ({KEY}) DO UPDATE SET trigger_count = c.trigger_count + 1,
            last_started_at = GREATEST(c.last_started_at, EXCLUDED.last_started_at);
    END IF;
    RETURN NULL;
END
$$
"""
POSTGRES_TRIGGER = f"""
CREATE TRIGGER {FUNCTION}
AFTER INSERT OR DELETE OR UPDATE OF org_id, schedule_name, started_at, outcome, dry_run ON {RUNS}
FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()
"""

# SQLite stores a UTC datetime as 'YYYY-MM-DD HH:MM:SS.ffffff': its first 10 characters are the
# day, as a Date column stores it.
_ADD = f"""
    INSERT INTO {TABLE} ({KEY}, trigger_count, last_started_at)
    VALUES (NEW.org_id, NEW.schedule_name, substr(NEW.started_at, 1, 10), NEW.outcome,
            NEW.dry_run, 1, NEW.started_at)
    ON CONFLICT ({KEY}) DO UPDATE SET trigger_count = trigger_count + 1,
        last_started_at = max(last_started_at, excluded.last_started_at);
"""
_TAKE_BACK = f"""
    UPDATE {TABLE} SET trigger_count = trigger_count - 1
    WHERE org_id = OLD.org_id AND schedule_name = OLD.schedule_name
      AND day = substr(OLD.started_at, 1, 10) AND outcome = OLD.outcome
      AND dry_run = OLD.dry_run;
"""
_SETTLED = "UPDATE OF org_id, schedule_name, started_at, outcome, dry_run"
SQLITE_BODIES = {
    "added": ("INSERT", "NEW", _ADD),
    "removed": ("DELETE", "OLD", _TAKE_BACK),
    "settled_from": (_SETTLED, "OLD", _TAKE_BACK),
    "settled_to": (_SETTLED, "NEW", _ADD),
}

BACKFILL = f"""
INSERT INTO {TABLE} ({KEY}, trigger_count, last_started_at)
SELECT org_id, schedule_name, {{day}}, outcome, dry_run, count(*), max(started_at)
FROM {RUNS} WHERE outcome <> 'running'
GROUP BY org_id, schedule_name, {{day}}, outcome, dry_run
"""


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("org_id", sa.Uuid(), nullable=False),
        sa.Column("schedule_name", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("trigger_count", sa.Integer(), nullable=False),
        sa.Column("last_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], ondelete="CASCADE", name=op.f(f"fk_{TABLE}_org_id_orgs")
        ),
        sa.PrimaryKeyConstraint(
            "org_id", "schedule_name", "day", "outcome", "dry_run", name=op.f(f"pk_{TABLE}")
        ),
    )
    op.create_index(op.f(f"ix_{TABLE}_org_id_day"), TABLE, ["org_id", "day"])
    op.create_index(op.f(f"ix_{TABLE}_day"), TABLE, ["day"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'ALTER TABLE "{TABLE}" ENABLE ROW LEVEL SECURITY')
        op.execute(POSTGRES_FUNCTION)
        op.execute(POSTGRES_TRIGGER)
        op.execute(BACKFILL.format(day=POSTGRES_DAY.format(row=RUNS)))
        return
    for name, (event, row, body) in SQLITE_BODIES.items():
        op.execute(
            f"CREATE TRIGGER {FUNCTION}_{name} AFTER {event} ON {RUNS} "
            f"WHEN {row}.outcome <> 'running' BEGIN {body} END"
        )
    op.execute(BACKFILL.format(day="substr(started_at, 1, 10)"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {FUNCTION} ON {RUNS}")
        op.execute(f"DROP FUNCTION {FUNCTION}()")
    else:
        for name in SQLITE_BODIES:
            op.execute(f"DROP TRIGGER {FUNCTION}_{name}")
    op.drop_index(op.f(f"ix_{TABLE}_day"), table_name=TABLE)
    op.drop_index(op.f(f"ix_{TABLE}_org_id_day"), table_name=TABLE)
    op.drop_table(TABLE)
