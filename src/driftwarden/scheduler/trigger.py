"""The trigger: one executed promotion per window, claimed through a unique index.

docs/reference/scheduler.md#trigger

The claim is the `running` row inserted under the partial unique index
`uq_contract_drift_trigger_runs_window_claim`, in the same transaction that runs the promotion and
turns the row into `executed` (or `failed`). A racer's insert waits on the index until the
claimant commits, then conflicts (the window was executed: the racer records `deduped`) or
succeeds (the claimant failed, or died and its transaction was rolled back). A `running` claim
is therefore never visible to other transactions and cannot go stale.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import BindParameter, Insert, Select, bindparam, insert, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from driftwarden.db.base import new_id
from driftwarden.errors import DomainError
from driftwarden.metrics import events as metrics
from driftwarden.patterns import service as patterns_service
from driftwarden.scheduler import policy as policy_service
from driftwarden.scheduler import summary as summary_service
from driftwarden.scheduler import windows
from driftwarden.scheduler.models import EXECUTED, TriggerRun
from driftwarden.scheduler.schemas import PolicyRead, TriggerCreate, TriggerRead
from driftwarden.settings import Settings

log = logging.getLogger("driftwarden.scheduler")
CLAIM_ATTEMPTS = 3


@dataclass(frozen=True)
class TriggerContext:
    """Who asked, for the record."""

    now: datetime
    settings: Settings
    request_id: str | None = None
    idempotency_key: str | None = None
    api_key_id: uuid.UUID | None = None
    summary: summary_service.SummaryAhead | None = None  # what the notify after it reads


def run_trigger(
    session: Session,
    *,
    org_id: uuid.UUID,
    body: TriggerCreate,
    policy: PolicyRead,
    ctx: TriggerContext,
) -> TriggerRead:
    """Decide and record one trigger; the caller commits."""
    row = _new_row(org_id=org_id, body=body, policy=policy, ctx=ctx)
    gated = windows.gate_outcome(
        policy_enabled=policy.enabled,
        promote_to_patterns=policy.promote_to_patterns,
        force=body.force,
    )
    if gated is not None:
        return _settle(session, row, outcome=gated, ctx=ctx)
    if body.dry_run or body.force:
        session.add(row)
        session.flush()
        return _promote(session, row, org_id=org_id, body=body, policy=policy, ctx=ctx)
    if _record_deduped(session, row, ctx=ctx):
        return read(row)
    winner = _claim(session, row)
    if winner is not None:
        row.deduped_from_trigger_id = winner
        return _settle(session, row, outcome="deduped", ctx=ctx)
    return _promote(session, row, org_id=org_id, body=body, policy=policy, ctx=ctx)


def record_deduped_unread(
    session: Session,
    *,
    org_id: uuid.UUID,
    body: TriggerCreate,
    policy: PolicyRead,
    ctx: TriggerContext,
) -> TriggerRead | None:
    """Postgres, a schedule run: the deduped trigger under a policy not read in this transaction
    (this process's last read), recorded only while the org's policy is still that one, in the
    statement that reads the notify's summary (`ctx.summary`). None when nothing was recorded
    (the policy changed, it would gate the trigger, no winner yet): run the trigger after
    reading the policy."""
    if body.dry_run or body.force or ctx.summary is None or policy.is_default:
        return None  # the defaults gate every trigger (not enabled)
    if windows.gate_outcome(
        policy_enabled=policy.enabled, promote_to_patterns=policy.promote_to_patterns, force=False
    ):
        return None
    row = _new_row(org_id=org_id, body=body, policy=policy, ctx=ctx)
    return read(row) if _record_deduped(session, row, ctx=ctx, unread=policy) else None


def _new_row(
    *, org_id: uuid.UUID, body: TriggerCreate, policy: PolicyRead, ctx: TriggerContext
) -> TriggerRun:
    schedule = body.schedule_name or policy.schedule_name
    window = windows.window_for(ctx.now, body.window_minutes or policy.schedule_window_minutes)
    key = windows.dedupe_key(
        org_id=org_id, schedule_name=schedule, window=window, agent_id=body.agent_id
    )
    return TriggerRun(
        org_id=org_id,
        schedule_name=schedule,
        window_minutes=window.minutes,
        window_start=window.start,
        window_end=window.end,
        agent_id=body.agent_id,
        dedupe_key=key,
        outcome="running",
        dry_run=body.dry_run,
        forced=body.force,
        request_id=ctx.request_id,
        idempotency_key=ctx.idempotency_key,
        started_at=ctx.now,
    )


def _winner(dedupe_key: str | BindParameter[str]) -> Select[tuple[uuid.UUID]]:
    """The trigger that already executed this window for real, if any (Core: no ORM compile; over
    a short alias, for the statement carrying it to stay under psycopg's 4 kB parse cache)."""
    runs = TriggerRun.__table__.alias("w").c
    return (
        select(runs.id)
        .where(runs.dedupe_key == dedupe_key, EXECUTED, runs.dry_run.is_(False))
        .order_by(runs.started_at)
        .limit(1)
    )


def _executed_in_window(session: Session, dedupe_key: str) -> uuid.UUID | None:
    return session.scalar(_winner(dedupe_key))


def _record_deduped(
    session: Session, row: TriggerRun, *, ctx: TriggerContext, unread: PolicyRead | None = None
) -> bool:
    """When the window was executed, record this trigger as `deduped` from it in one statement.

    INSERT ... SELECT from the winner: no row is written (False) when there is none, and the
    caller goes on to claim the window. The row stays out of the session (nothing reloads it).
    With `unread`, only while the org's policy is still that one (`policy.unchanged`).
    """
    table = TriggerRun.__table__
    settled = {"id": new_id(), "outcome": "deduped", "finished_at": ctx.now, "duration_ms": 0.0}
    values = {c.key: settled.get(c.key, getattr(row, c.key)) for c in table.columns}
    given = tuple(key for key, value in values.items() if value is not None)
    params = {**{key: values[key] for key in given}, "winner_key": row.dedupe_key}
    if unread is not None or (
        ctx.summary is not None and session.get_bind().dialect.name == "postgresql"
    ):
        winner_id = _deduped_with_summary(session, row, given, params, ctx=ctx, unread=unread)
    else:
        winner_id = session.scalar(_deduped_insert(given), params)
    if winner_id is None:
        return False
    for name, value in settled.items():
        setattr(row, name, value)
    row.deduped_from_trigger_id = winner_id
    metrics.record_trigger(outcome="deduped", dry_run=row.dry_run)
    return True


def _deduped_with_summary(
    session: Session,
    row: TriggerRun,
    given: tuple[str, ...],
    params: dict[str, Any],
    *,
    ctx: TriggerContext,
    unread: PolicyRead | None,
) -> uuid.UUID | None:
    """The deduped insert with the notify's summary of this org and schedule, one statement.

    The summary cannot see the row its own statement inserts: it is added here, as the notify's
    own read would count it. Nothing is found for the notify when no row was inserted.
    """
    assert ctx.summary is not None
    scope = {"org_id": row.org_id, "schedule_name": row.schedule_name}
    summary = summary_service.summary_params(
        **scope, window_days=ctx.summary.window_days, now=ctx.now
    )
    if unread is not None:
        summary.update(policy_service.unchanged_params(unread))
    statement = _deduped_and_summary(given, guarded=unread is not None)
    found = session.execute(statement, {**params, **summary}).one()._asdict()
    winner_id = found.pop("deduped_from")
    if winner_id is not None:
        counted = summary_service.with_own_deduped(found, started_at=row.started_at)
        ctx.summary.found = summary_service.summary_of(
            counted, **scope, window_days=ctx.summary.window_days
        )
    return winner_id


@functools.cache
def _deduped_insert(given: tuple[str, ...], *, guarded: bool = False) -> Insert:
    """The deduped INSERT ... SELECT for these columns, built once and bound on each call (the
    retried schedule run issues it every time; building it cost more than running it).

    `guarded`: only while the org's policy is the one bound (`policy.unchanged`)."""
    table = TriggerRun.__table__
    columns = [table.c[key] for key in given]
    winner = _winner(bindparam("winner_key", type_=table.c.dedupe_key.type)).subquery()
    source = select(*(bindparam(c.key, type_=c.type) for c in columns), winner.c.id)
    if guarded:
        source = source.where(policy_service.unchanged())
    return (
        insert(table)
        .from_select([*columns, table.c.deduped_from_trigger_id], source)
        .returning(table.c.deduped_from_trigger_id)
    )


@functools.cache
def _deduped_and_summary(given: tuple[str, ...], *, guarded: bool) -> Select[Any]:
    """Postgres: the deduped insert as a data-modifying CTE beside the summary's aggregate.

    The summary binds `org_id` and `schedule_name` too: the trigger's, the same values.
    """
    deduped = _deduped_insert(given, guarded=guarded).cte("deduped")
    winner = select(deduped.c.deduped_from_trigger_id).scalar_subquery().label("deduped_from")
    summary = summary_service.summary_with_cooldown_statement(by_schedule=True)
    return summary.add_columns(winner).add_cte(deduped)


def _claim(session: Session, row: TriggerRun) -> uuid.UUID | None:
    """Insert the `running` claim; returns the winner's id when the window is already taken."""
    for attempt in range(CLAIM_ATTEMPTS):
        winner = _executed_in_window(session, row.dedupe_key) if attempt else None
        if winner is not None:
            return winner
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
            return None
        except IntegrityError:
            if row in session:
                session.expunge(row)
            log.info("window claim conflict", extra={"dedupe_key": row.dedupe_key})
    winner = _executed_in_window(session, row.dedupe_key)
    if winner is None:
        raise RuntimeError("could not claim the trigger window; retry")
    return winner


def _promote(
    session: Session,
    row: TriggerRun,
    *,
    org_id: uuid.UUID,
    body: TriggerCreate,
    policy: PolicyRead,
    ctx: TriggerContext,
) -> TriggerRead:
    """Run the promotion inside a savepoint: its failure is recorded, not raised."""
    min_drift, limit = policy_service.promotion_scope(
        policy, min_drift=body.min_drift, limit=body.limit
    )
    started = time.perf_counter()
    try:
        with session.begin_nested():
            result = patterns_service.promote_drift(
                session,
                org_id=org_id,
                agent_id=body.agent_id,
                min_drift=min_drift,
                limit=limit,
                dry_run=body.dry_run,
                auto_resolve=True,
                now=ctx.now,
                settings=ctx.settings,
                request_id=ctx.request_id,
                api_key_id=ctx.api_key_id,
            )
    except Exception as exc:  # the record says why; the window stays open for a retry
        log.warning("drift promotion failed", exc_info=True, extra={"dedupe_key": row.dedupe_key})
        row.error = error_text(exc, ctx.request_id)
        return _settle(session, row, outcome="failed", ctx=ctx, started=started)
    row.promote_result = to_jsonable_python(result)
    return _settle(session, row, outcome="executed", ctx=ctx, started=started)


def error_text(exc: Exception, request_id: str | None) -> str:
    """Code, one-line message and request id: never SQL, a stack, or an exception's own text."""
    if isinstance(exc, DomainError):
        code, message = exc.code, (exc.message.splitlines() or [""])[0][:300]
    elif isinstance(exc, SQLAlchemyError):
        code, message = "DATABASE_ERROR", "the database failed during drift promotion; retry"
    else:
        code, message = "INTERNAL_ERROR", f"drift promotion failed ({type(exc).__name__})"
    return f"{code}: {message} (request_id {request_id or '-'})"


def _settle(
    session: Session,
    row: TriggerRun,
    *,
    outcome: str,
    ctx: TriggerContext,
    started: float | None = None,
) -> TriggerRead:
    row.outcome = outcome
    row.finished_at = ctx.now
    row.duration_ms = (
        round((time.perf_counter() - started) * 1000, 3) if started is not None else 0.0
    )
    if row not in session:
        session.add(row)
    session.flush()
    metrics.record_trigger(outcome=outcome, dry_run=row.dry_run)
    return read(row)


def read(row: TriggerRun) -> TriggerRead:
    """The run as the trigger endpoint reports it (docs/reference/scheduler.md, trigger)."""
    return TriggerRead.of(
        row,
        trigger_id=row.id,
        executed=row.outcome == "executed",
        deduped=row.outcome == "deduped",
        promote=row.promote_result,
    )
