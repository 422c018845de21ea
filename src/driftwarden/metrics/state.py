"""State gauges read from the database at scrape time: the same values on every worker and host.

Four statements whatever the number of orgs (docs/reference/operations.md, metrics): one over
orgs and their policy schedules, one counting bindings per (org, drift level), one grouping open
patterns, one grouping the outbox. The drift level of a (bound, current) version pair is the
scan's own rule, classified in Python once per pair and remembered by the process (PairLevels);
the database maps each binding's pair to its level, so the result has a handful of rows per org.
Each schedule's status comes from the scheduler's pure rules."""

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
from driftwarden.db.helpers import in_strings
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.patterns.lifecycle import CLOSED_STATUSES
from driftwarden.patterns.models import IssuePattern
from driftwarden.scheduler import status as status_rules
from driftwarden.scheduler.models import DriftPolicy, TriggerRun
from driftwarden.scheduler.schemas import PolicyFields
from driftwarden.scheduler.status_reads import newest_trigger_value
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


def read_snapshot(session: Session, *, now: datetime, levels: PairLevels | None = None) -> Snapshot:
    """The four statements; `levels` carries the pairs classified by earlier scrapes."""
    snapshot = Snapshot()
    org_ids = _schedules(session, now=now, into=snapshot)
    _bindings(session, org_ids, levels or PairLevels(), into=snapshot)
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


@dataclass
class PairLevels:
    """The drift level of each (bound, current) version pair already classified, kept between
    scrapes by the process: classification is a pure function of the pair, so a steady scrape
    classifies nothing. Bounded: beyond `limit` pairs, new ones are classified every scrape."""

    limit: int = 10_000
    levels: dict[tuple[str, str], str] = field(default_factory=dict)

    def learn(self, key: str) -> str:
        """The level of the pair a key names: classified now, and remembered while there is room."""
        bound, current = _pair_of(key)
        level = self.levels.get((bound, current))
        if level is None:
            level = classify(bound, current).drift
            if len(self.levels) < self.limit:
                self.levels[(bound, current)] = level
        return level

    def keys_by_level(self) -> dict[str, list[str]]:
        keys: dict[str, list[str]] = defaultdict(list)
        for (bound, current), level in self.levels.items():
            keys[level].append(_pair_key(bound, current))
        return keys


def _bindings(session: Session, org_ids: list[str], levels: PairLevels, *, into: Snapshot) -> None:
    """Bindings per (org, drift level) in one statement: bindings are first counted per (org,
    definition, bound version), a few rows per org; the database then maps each count's version
    pair to the level already known for it, or to the pair's own key when it has not been seen,
    and the pair is classified here (once, then remembered)."""
    binding, definition = ContractBinding, ContractDefinition
    per_version = (
        select(
            binding.org_id,
            binding.definition_id,
            binding.definition_contract_version.label("bound"),
            func.count().label("n"),
        )
        .group_by(binding.org_id, binding.definition_id, binding.definition_contract_version)
        .subquery()
    )
    visible = and_(
        definition.id == per_version.c.definition_id,
        or_(definition.org_id == per_version.c.org_id, definition.org_id.is_(None)),
    )
    level = _level_of(session, per_version.c.bound, definition.contract_version, levels)
    query = (
        select(per_version.c.org_id, level, func.sum(per_version.c.n))
        .select_from(per_version)
        .outerjoin(definition, visible)
        .group_by(per_version.c.org_id, level)
    )
    counts = {(org, lvl): 0 for org in org_ids for lvl in DRIFT_LEVELS}
    learned: dict[str, str] = {}  # this scrape's unseen pairs, once each however many orgs
    names: dict[Any, str] = {}
    for org_id, drift, n in session.execute(query):
        if drift not in DRIFT_LEVELS:
            drift = learned.get(drift) or learned.setdefault(drift, levels.learn(drift))
        org = names.get(org_id) or names.setdefault(org_id, str(org_id))
        counts[(org, drift)] = counts.get((org, drift), 0) + int(n)
    into.bindings = counts


def _pair_key(bound: str, current: str) -> str:
    """One string per version pair, unambiguous whatever the versions hold (length-prefixed);
    never a level's name, as it holds a colon."""
    return f"{len(bound)}:{bound}{current}"


def _pair_of(key: str) -> tuple[str, str]:
    length, versions = key.split(":", 1)
    return versions[: int(length)], versions[int(length) :]


def _level_of(session: Session, bound: Any, current: Any, levels: PairLevels) -> Any:
    """The drift level of a version pair: `invalid` when a version is missing, the level known
    for the pair, or else the pair's key. Known keys go to Postgres as one array parameter per
    level (a hashed `= ANY`), to SQLite as IN lists."""
    key = cast(func.length(bound), String) + literal(":", String) + bound + current
    dialect_name = session.get_bind().dialect.name
    whens = [(or_(bound.is_(None), current.is_(None)), literal("invalid", String))]
    for level, keys in levels.keys_by_level().items():
        known = in_strings(key, keys, dialect_name=dialect_name)
        whens.append((known, literal(level, String)))
    return case(*whens, else_=key)


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
    _levels: PairLevels = field(default_factory=PairLevels)

    def get(self, session: Session, *, now: datetime, monotonic: float) -> Snapshot:
        fresh = self._taken_at is not None and monotonic - self._taken_at < self.seconds
        if not fresh or self._snapshot is None:
            self._snapshot = read_snapshot(session, now=now, levels=self._levels)
            self._taken_at = monotonic
        return self._snapshot
