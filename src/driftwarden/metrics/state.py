"""State gauges read from the database at scrape time: the same values on every worker and host.

Five statements whatever the number of orgs (docs/reference/operations.md, metrics): one over
orgs and their policy schedules, one reading the distinct (bound, current) version pairs, one
counting bindings per (org, drift level), one grouping open patterns, one grouping the outbox.
Each version pair is classified once in Python with the scan's own rule, and the database maps
pairs to levels, so the result has a handful of rows per org; each schedule's status comes from
the scheduler's pure rules.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import String, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from driftwarden.auth.models import Org
from driftwarden.contracts.drift import DRIFT_LEVELS, classify
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.patterns.lifecycle import CLOSED_STATUSES
from driftwarden.patterns.models import IssuePattern
from driftwarden.scheduler import status as status_rules
from driftwarden.scheduler.models import DriftPolicy, TriggerRun
from driftwarden.scheduler.schemas import PolicyFields
from driftwarden.scheduler.summary import newest_trigger_value
from driftwarden.scheduler.windows import gate_outcome

OUTBOX_STATUSES = ("pending", "sending", "sent", "dead")
DEFAULT_POLICY = PolicyFields()


@dataclass
class Schedule:
    """One policy schedule's reported status and last execution."""

    org_id: str
    name: str
    status: str
    last_executed_at: datetime | None


@dataclass
class Snapshot:
    """Everything the state gauges say, read at one moment."""

    bindings: dict[tuple[str, str], int] = field(default_factory=dict)  # (org, drift) -> count
    patterns: dict[tuple[str, str, str], int] = field(default_factory=dict)  # (org, tag, priority)
    schedules: list[Schedule] = field(default_factory=list)
    outbox: dict[str, int] = field(default_factory=dict)
    oldest_pending_age_seconds: float = 0.0


def read_snapshot(session: Session, *, now: datetime) -> Snapshot:
    """The five statements."""
    snapshot = Snapshot()
    org_ids = _schedules(session, now=now, into=snapshot)
    _bindings(session, org_ids, into=snapshot)
    _patterns(session, into=snapshot)
    _outbox(session, now=now, into=snapshot)
    return snapshot


def _schedules(session: Session, *, now: datetime, into: Snapshot) -> list[str]:
    """Every org, with its policy schedule's newest executed trigger and newest real trigger."""
    name = func.coalesce(
        DriftPolicy.schedule_name, literal(DEFAULT_POLICY.schedule_name, String(64))
    )
    executed = aliased(TriggerRun)
    gated = newest_trigger_value(
        TriggerRun.started_at,
        org_id=Org.id,
        schedule_name=name,
        executed_only=False,
        outcomes=status_rules.GATED_OUTCOMES,
    )
    enabled = func.coalesce(DriftPolicy.enabled, DEFAULT_POLICY.enabled)
    promotes = func.coalesce(DriftPolicy.promote_to_patterns, DEFAULT_POLICY.promote_to_patterns)
    query = (
        select(
            Org.id,
            enabled.label("enabled"),
            promotes.label("promotes"),
            name.label("name"),
            DriftPolicy.schedule_window_minutes,
            executed.window_start,
            executed.started_at,
            gated.label("gated_at"),
        )
        .select_from(Org)
        .outerjoin(DriftPolicy, DriftPolicy.org_id == Org.id)
        .outerjoin(
            executed,
            executed.id
            == newest_trigger_value(
                TriggerRun.id, org_id=Org.id, schedule_name=name, executed_only=True
            ),
        )
    )
    org_ids = []
    for row in session.execute(query):
        org_ids.append(str(row.id))
        off = (
            gate_outcome(
                policy_enabled=bool(row.enabled),
                promote_to_patterns=bool(row.promotes),
                force=False,
            )
            is not None
        )
        computed = status_rules.schedule_status(
            window_minutes=row.schedule_window_minutes or DEFAULT_POLICY.schedule_window_minutes,
            last_window_start=row.window_start,
            now=now,
            last_executed_at=row.started_at,
            policy_off=off,
            last_gated_at=row.gated_at,
        )
        # As the schedule-status endpoint: an enabled schedule, or one still triggered while off.
        if not off or computed.status == status_rules.DISABLED:
            into.schedules.append(Schedule(str(row.id), row.name, computed.status, row.started_at))
    return org_ids


def _bindings(session: Session, org_ids: list[str], *, into: Snapshot) -> None:
    """Bindings per (org, drift level): the few distinct version pairs are read and classified
    first, then the database counts each org's bindings by the level of their pair."""
    binding, definition = ContractBinding, ContractDefinition
    visible = and_(
        definition.id == binding.definition_id,
        or_(definition.org_id == binding.org_id, definition.org_id.is_(None)),
    )
    bound, current = binding.definition_contract_version, definition.contract_version
    scope = select(binding.org_id).select_from(binding).outerjoin(definition, visible)
    pairs = session.execute(
        scope.with_only_columns(bound, current).distinct().where(bound.is_not(None))
    ).all()
    keys: dict[str, list[str]] = defaultdict(list)
    for bnd, cur in pairs:
        if cur is not None:
            keys[classify(bnd, cur).drift].append(_pair_key(bnd, cur))
    level = _level_of(_pair_key_sql(bound, current), keys)
    counts = {(org, lvl): 0 for org in org_ids for lvl in DRIFT_LEVELS}
    leveled = scope.add_columns(level.label("drift")).subquery()
    grouped = select(leveled.c.org_id, leveled.c.drift, func.count()).group_by(
        leveled.c.org_id, leveled.c.drift
    )
    for org_id, drift, n in session.execute(grouped):
        counts[(str(org_id), drift)] = counts.get((str(org_id), drift), 0) + n
    into.bindings = counts


def _pair_key(bound: str, current: str) -> str:
    """One string per version pair, unambiguous whatever the versions hold (length-prefixed)."""
    return f"{len(bound)}:{bound}{current}"


def _pair_key_sql(bound: Any, current: Any) -> Any:
    """The same key in SQL; NULL when either version is missing."""
    return cast(func.length(bound), String) + literal(":", String) + bound + current


def _level_of(key: Any, keys: dict[str, list[str]]) -> Any:
    """The drift level of each row's pair as a CASE over IN lists (hashed by the database);
    a pair with a missing version, or classified invalid, falls through to `invalid`."""
    whens = [(key.in_(keys[lvl]), lvl) for lvl in DRIFT_LEVELS if lvl != "invalid" and keys[lvl]]
    if not whens:
        return literal("invalid", String)
    return case(*whens, else_=literal("invalid", String))


def _patterns(session: Session, *, into: Snapshot) -> None:
    p = IssuePattern
    query = (
        select(p.org_id, p.primary_tag, p.priority, func.count())
        .where(p.status.not_in(sorted(CLOSED_STATUSES)))
        .group_by(p.org_id, p.primary_tag, p.priority)
    )
    into.patterns = {
        (str(org), tag, priority): n for org, tag, priority, n in session.execute(query)
    }


def _outbox(session: Session, *, now: datetime, into: Snapshot) -> None:
    o = NotificationOutbox
    query = select(o.status, func.count(), func.min(o.created_at)).group_by(o.status)
    into.outbox = dict.fromkeys(OUTBOX_STATUSES, 0)
    for status, n, oldest in session.execute(query):
        into.outbox[status] = n
        if status == "pending" and oldest is not None:
            into.oldest_pending_age_seconds = max(0.0, (now - oldest).total_seconds())


def families(snapshot: Snapshot, *, org_labels: bool) -> list[GaugeMetricFamily]:
    """The snapshot as metric families; without org labels, values are summed over orgs."""
    return [
        _bindings_family(snapshot, org_labels),
        _patterns_family(snapshot, org_labels),
        *_schedule_families(snapshot, org_labels),
        *_outbox_families(snapshot),
    ]


def _summed(
    values: Iterable[tuple[tuple[str, ...], float]], org_labels: bool
) -> dict[tuple[str, ...], float]:
    """Label tuples whose first element is the org id, kept or dropped (then summed)."""
    out: dict[tuple[str, ...], float] = defaultdict(float)
    for labels, value in values:
        out[labels if org_labels else labels[1:]] += value
    return out


def _family(
    name: str, doc: str, labels: list[str], org_labels: bool, values: dict[tuple[str, ...], float]
) -> GaugeMetricFamily:
    names = labels if org_labels else labels[1:]
    family = GaugeMetricFamily(name, doc, labels=names)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def _bindings_family(snapshot: Snapshot, org_labels: bool) -> GaugeMetricFamily:
    values = _summed(snapshot.bindings.items(), org_labels)
    return _family(
        "driftwarden_bindings",
        "Bindings by drift level, as the drift scan counts them.",
        ["org_id", "drift"],
        org_labels,
        values,
    )


def _patterns_family(snapshot: Snapshot, org_labels: bool) -> GaugeMetricFamily:
    values = _summed(snapshot.patterns.items(), org_labels)
    return _family(
        "driftwarden_patterns_open",
        "Open issue patterns by primary tag and priority.",
        ["org_id", "primary_tag", "priority"],
        org_labels,
        values,
    )


def _schedule_families(snapshot: Snapshot, org_labels: bool) -> list[GaugeMetricFamily]:
    """1 for each schedule's status, 0 for the others; without org labels, schedules per status."""
    flags = (
        ((s.org_id, s.name, candidate), float(s.status == candidate))
        for s in snapshot.schedules
        for candidate in status_rules.STATUSES
    )
    statuses = _summed(flags, org_labels)
    status_family = _family(
        "driftwarden_schedule_status",
        "1 for the schedule's current status, 0 for the others.",
        ["org_id", "schedule_name", "status"],
        org_labels,
        statuses,
    )
    last: dict[tuple[str, ...], float] = {}
    for s in snapshot.schedules:
        if s.last_executed_at is None:
            continue
        key, at = ((s.org_id, s.name) if org_labels else (s.name,)), s.last_executed_at.timestamp()
        last[key] = min(last.get(key, at), at)  # without org labels: the least recent schedule
    last_family = _family(
        "driftwarden_schedule_last_executed_timestamp_seconds",
        "Unix time of the schedule's last executed trigger.",
        ["org_id", "schedule_name"],
        org_labels,
        last,
    )
    return [status_family, last_family]


def _outbox_families(snapshot: Snapshot) -> list[GaugeMetricFamily]:
    messages = GaugeMetricFamily(
        "driftwarden_outbox_messages", "Outbox messages by status.", labels=["status"]
    )
    for status in OUTBOX_STATUSES:
        messages.add_metric([status], snapshot.outbox.get(status, 0))
    oldest = GaugeMetricFamily(
        "driftwarden_outbox_oldest_pending_age_seconds",
        "Age of the oldest pending outbox message (0 when none).",
        value=snapshot.oldest_pending_age_seconds,
    )
    return [messages, oldest]


@dataclass
class StateCache:
    """The last snapshot, reused for `seconds` (METRICS_CACHE_SECONDS) by this process."""

    seconds: float
    _taken_at: float | None = None
    _snapshot: Snapshot | None = None

    def get(self, session: Session, *, now: datetime, monotonic: float) -> Snapshot:
        fresh = self._taken_at is not None and monotonic - self._taken_at < self.seconds
        if not fresh or self._snapshot is None:
            self._snapshot, self._taken_at = read_snapshot(session, now=now), monotonic
        return self._snapshot
