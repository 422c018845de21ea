"""Drift promotion: findings become open issue patterns, a few statements per thousand.

docs/reference/resources.md#drift-promotion

One scan picks the eligible findings; one query reads the open drift patterns in scope; new
findings are inserted in bulk (losers of a race with another promoter reuse the winner's row),
existing ones are bumped in bulk, and patterns whose drift is gone are resolved in bulk.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftwarden.contracts import content as content_rules
from driftwarden.contracts import drift
from driftwarden.contracts import service as contracts_service
from driftwarden.contracts.models import ContractBinding, ContractDefinition
from driftwarden.contracts.scan import DriftItem
from driftwarden.db.helpers import chunked
from driftwarden.patterns import notify, store
from driftwarden.patterns.lifecycle import CLOSED_STATUSES, history_entry
from driftwarden.patterns.models import IssuePattern
from driftwarden.settings import Settings

PRIMARY_TAG = "contract_drift"
EVIDENCE_FIELDS = tuple(f.name for f in fields(DriftItem))
MAX_KEY = 500  # issue_patterns.dedupe_key length
CLAIM_PASSES = 3  # a pattern closing under a promotion costs one more pass, not a lost finding
RESOLVE_NOTES = {
    "binding_removed": "auto-resolved by drift promotion: the binding no longer exists",
    "versions_changed": "auto-resolved by drift promotion: "
    "the binding is no longer at these versions "
    "(upgraded, re-bound or the definition changed)",
    "healthy": "auto-resolved by drift promotion: these versions no longer drift "
    "and the config satisfies the schema",
}


def dedupe_key(binding_id: uuid.UUID | str, bound: str | None, current: str | None) -> str:
    """`contract_drift:{binding_id}:{bound}:{current}`; hashed versions when that would not fit."""
    key = f"{PRIMARY_TAG}:{binding_id}:{bound or ''}:{current or ''}"
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(f"{bound or ''}\x00{current or ''}".encode()).hexdigest()
    return f"{PRIMARY_TAG}:{binding_id}:sha256:{digest}"


def title_of(item: DriftItem) -> str:
    bound, current = (
        item.bound_contract_version or "(none)",
        item.current_contract_version or "(none)",
    )
    return (
        f"Contract drift ({item.severity}): "
        f"{item.definition_type} '{item.definition_key}' {bound} → {current}"
    )


@dataclass
class Plan:
    """What a promotion will do, computed before anything is written (and all a dry run does)."""

    findings: dict[str, DriftItem]
    existing: dict[str, uuid.UUID]
    stale: dict[str, list[uuid.UUID]] = field(default_factory=dict)
    # bindings per drift level over the whole scope, kept with the trigger (console drift chart)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def new_keys(self) -> list[str]:
        return [key for key in self.findings if key not in self.existing]


def _open_drift_patterns(
    session: Session, *, org_id: uuid.UUID, agent_id: uuid.UUID | None
) -> dict[str, uuid.UUID]:
    query = select(IssuePattern.dedupe_key, IssuePattern.id).where(
        IssuePattern.org_id == org_id,
        IssuePattern.primary_tag == PRIMARY_TAG,
        IssuePattern.status.not_in(CLOSED_STATUSES),
        IssuePattern.dedupe_key.is_not(None),
    )
    if agent_id is not None:
        query = query.where(IssuePattern.agent_id == agent_id)
    return dict(session.execute(query).all())


def _binding_of(key: str) -> uuid.UUID | None:
    parts = key.split(":", 2)
    try:
        return uuid.UUID(parts[1]) if len(parts) == 3 and parts[0] == PRIMARY_TAG else None
    except ValueError:
        return None


def _stale(
    session: Session, *, org_id: uuid.UUID, open_patterns: dict[str, uuid.UUID]
) -> dict[str, list[uuid.UUID]]:
    """Open drift patterns whose binding no longer drifts with those versions, grouped by why."""
    by_binding: dict[uuid.UUID, list[str]] = defaultdict(list)
    for key in open_patterns:
        binding_id = _binding_of(key)
        if binding_id is not None:
            by_binding[binding_id].append(key)
    live: dict[uuid.UUID, tuple[str | None, str | None]] = {}
    judged: dict[uuid.UUID, tuple[uuid.UUID, Any]] = {}
    schemas: dict[uuid.UUID, tuple[Any, dict[str, Any]]] = {}
    for chunk in chunked(list(by_binding)):
        query = (
            select(
                ContractBinding.id,
                ContractBinding.definition_contract_version,
                ContractDefinition.contract_version,
                ContractBinding.definition_id,
                ContractBinding.config,
                ContractDefinition.config_schema,
                ContractDefinition.default_config,
            )
            .join(ContractDefinition, ContractDefinition.id == ContractBinding.definition_id)
            .where(ContractBinding.org_id == org_id, ContractBinding.id.in_(chunk))
        )
        rows = session.execute(query).all()
        live.update({row[0]: (row[1], row[2]) for row in rows})
        judged.update({row[0]: (row[3], row[4]) for row in rows})
        schemas.update({row[3]: (row[5], row[6] or {}) for row in rows if row[5] is not None})
    content = content_rules.with_versions(session, schemas)
    severity = {
        binding_id: content.assess(d, *live[binding_id], config).severity
        for binding_id, (d, config) in judged.items()
    }
    stale: dict[str, list[uuid.UUID]] = defaultdict(list)
    for binding_id, keys in by_binding.items():
        versions = live.get(binding_id)
        for key in keys:
            reason = _stale_reason(binding_id, key, versions, severity.get(binding_id))
            if reason:
                stale[reason].append(open_patterns[key])
    return dict(stale)


def _stale_reason(
    binding_id: uuid.UUID,
    key: str,
    versions: tuple[str | None, str | None] | None,
    severity: str | None = None,
) -> str | None:
    """Why an open pattern no longer applies; `healthy` needs its config to validate again too."""
    if versions is None:
        return "binding_removed"
    if dedupe_key(binding_id, *versions) != key:
        return "versions_changed"
    return "healthy" if (severity or drift.classify(*versions).drift) == "none" else None


def plan_promotion(
    session: Session,
    *,
    org_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    min_drift: str,
    limit: int,
    auto_resolve: bool,
) -> tuple[Plan, int]:
    """The plan and the number of bindings scanned; reads only.

    Disabled bindings are counted too, as the drift scan scans them:
    docs/reference/resources.md#drift-scan
    """
    scan = contracts_service.scan_drift(
        session,
        org_id=org_id,
        agent_id=agent_id,
        min_drift=min_drift,
        enabled_only=True,
        limit=limit,
    )
    findings = {
        dedupe_key(i.binding_id, i.bound_contract_version, i.current_contract_version): i
        for i in scan.items
    }
    open_patterns = _open_drift_patterns(session, org_id=org_id, agent_id=agent_id)
    plan = Plan(
        findings=findings,
        existing={k: open_patterns[k] for k in findings if k in open_patterns},
        counts=dict(scan.counts),
    )
    if auto_resolve:
        plan.stale = _stale(session, org_id=org_id, open_patterns=open_patterns)
    return plan, scan.scanned_binding_count


def evidence_of(item: DriftItem) -> dict[str, Any]:
    """The finding as JSON, as an item of the drift scan.

    docs/reference/resources.md#drift-scan

    Built field by field, as asdict's deep copies cost seconds at 10k.
    """
    evidence = {name: getattr(item, name) for name in EVIDENCE_FIELDS}
    for name in ("binding_id", "agent_id", "definition_id"):
        evidence[name] = str(evidence[name])
    return evidence


def _new_row(
    item: DriftItem, *, org_id: uuid.UUID, key: str, now: datetime, api_key_id: uuid.UUID | None
) -> dict[str, Any]:
    return store.new_row(
        org_id=org_id,
        agent_id=item.agent_id,
        title=title_of(item),
        primary_tag=PRIMARY_TAG,
        priority="medium" if item.severity == "warning" else "high",
        evidence=evidence_of(item),
        dedupe_key=key,
        now=now,
        related_tags=[f"drift:{item.severity}", f"{item.definition_type}:{item.definition_key}"],
        api_key_id=api_key_id,
        note="created by drift promotion",
    )


@dataclass
class Applied:
    created: dict[str, uuid.UUID]
    reused: dict[str, uuid.UUID]
    resolved: list[tuple[uuid.UUID, str, str]]  # (id, previous status, reason)


def _claim(
    session: Session, plan: Plan, *, org_id: uuid.UUID, now: datetime, api_key_id: uuid.UUID | None
) -> tuple[dict[str, uuid.UUID], dict[str, uuid.UUID]]:
    """(created, reused) by key: insert the new keys, lock the rest.

    A key whose open pattern closed after the plan read it (a PATCH to wont_fix, say) is
    inserted on the next pass, so none is lost.
    """
    created: dict[str, uuid.UUID] = {}
    reused: dict[str, uuid.UUID] = {}
    todo, new = list(plan.findings), set(plan.new_keys)
    for _ in range(CLAIM_PASSES):
        rows = {
            key: _new_row(
                plan.findings[key], org_id=org_id, key=key, now=now, api_key_id=api_key_id
            )
            for key in todo
            if key in new
        }
        inserted = store.insert_open(session, list(rows.values()))
        created.update(
            (key, row["id"]) for key, row in rows.items() if key in inserted
        )  # finding order
        locked = store.lock_open(
            session, org_id=org_id, keys=[key for key in todo if key not in inserted]
        )
        reused.update(locked)
        todo = [key for key in todo if key not in inserted and key not in locked]
        if not todo:
            break
        new = set(todo)
    return created, reused


def apply_plan(
    session: Session, plan: Plan, *, org_id: uuid.UUID, now: datetime, api_key_id: uuid.UUID | None
) -> Applied:
    """Write the plan: bulk insert, bulk bump (race losers included), bulk resolve."""
    created, reused = _claim(session, plan, org_id=org_id, now=now, api_key_id=api_key_id)
    store.bump(session, ids=reused.values(), now=now)
    resolved: list[tuple[uuid.UUID, str, str]] = []
    for reason, ids in sorted(plan.stale.items()):
        closed = store.close_open(
            session,
            ids=ids,
            to_status="resolved",
            now=now,
            by_api_key_id=api_key_id,
            note=RESOLVE_NOTES[reason],
        )
        resolved += [(pattern_id, previous, reason) for pattern_id, previous in closed]
    return Applied(created=created, reused=reused, resolved=resolved)


def _notifications(
    session: Session,
    applied: Applied,
    plan: Plan,
    *,
    org_id: uuid.UUID,
    summary: dict[str, Any],
    now: datetime,
    settings: Settings,
    request_id: str | None,
    api_key_id: uuid.UUID | None,
) -> dict[str, Any]:
    common = {"org_id": org_id, "now": now, "settings": settings, "request_id": request_id}
    if applied.created:
        listed = [
            {
                "pattern_id": pid,
                "agent_id": plan.findings[key].agent_id,
                "title": title_of(plan.findings[key]),
                "drift": plan.findings[key].drift,
                "dedupe_key": key,
            }
            for key, pid in applied.created.items()
        ]
        data = {
            **summary,
            "created_patterns": listed[: notify.MAX_LISTED],
            "truncated": len(listed) > notify.MAX_LISTED,
        }
        result = notify.queue(session, event_type=notify.PATTERNS_PROMOTED, data=data, **common)
    else:
        result = notify.skipped(notify.PATTERNS_PROMOTED, "nothing_created")
    if applied.resolved:
        entry = history_entry(
            from_status=None,
            to_status="resolved",
            at=now,
            by_api_key_id=api_key_id,
            note="auto-resolved by drift promotion: the drift is gone",
        )
        changed = [
            {"pattern_id": pid, "from": previous, "reason": reason, "note": RESOLVE_NOTES[reason]}
            for pid, previous, reason in applied.resolved
        ]
        data = notify.bulk_status_changed_data(
            org_id=org_id, changed=changed, entry=entry, reason="auto_resolve"
        )
        result["status_changed"] = notify.queue(
            session, event_type=notify.STATUS_CHANGED, data=data, **common
        )
    else:
        result["status_changed"] = notify.skipped(notify.STATUS_CHANGED, "nothing_resolved")
    return result


def _ids(values: Any) -> list[str]:
    return [str(value) for value in values]


def promote_drift(
    session: Session,
    *,
    org_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    min_drift: str,
    limit: int,
    dry_run: bool,
    auto_resolve: bool,
    now: datetime,
    settings: Settings,
    request_id: str | None = None,
    api_key_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Promote drift findings to open patterns; returns the response data, JSON-ready.

    `min_drift` and `limit` come from the caller, which resolves them from the org's drift policy
    (`scheduler.policy.promotion_scope`): patterns know nothing of the scheduler.
    """
    plan, scanned = plan_promotion(
        session,
        org_id=org_id,
        agent_id=agent_id,
        min_drift=min_drift,
        limit=limit,
        auto_resolve=auto_resolve,
    )
    summary: dict[str, Any] = {
        "org_id": str(org_id),
        "agent_id": str(agent_id) if agent_id else None,
        "min_drift": min_drift,
        "limit": limit,
        "dry_run": dry_run,
        "auto_resolve": auto_resolve,
        "scanned_item_count": scanned,
        "eligible_item_count": len(plan.findings),
        "drift_counts": plan.counts,
    }
    if dry_run:
        stale = [pid for ids in plan.stale.values() for pid in ids]
        notification = {
            **notify.skipped(notify.PATTERNS_PROMOTED, "dry_run"),
            "status_changed": notify.skipped(notify.STATUS_CHANGED, "dry_run"),
        }
        return {
            **summary,
            "created_pattern_count": len(plan.new_keys),
            "reused_pattern_count": len(plan.existing),
            "resolved_pattern_count": len(stale),
            "pattern_ids": _ids(plan.existing.values()),
            "resolved_pattern_ids": _ids(stale),
            "notification": notification,
        }
    applied = apply_plan(session, plan, org_id=org_id, now=now, api_key_id=api_key_id)
    summary.update(
        created_pattern_count=len(applied.created),
        reused_pattern_count=len(applied.reused),
        resolved_pattern_count=len(applied.resolved),
    )
    ordered = [applied.created.get(key) or applied.reused.get(key) for key in plan.findings]
    notification = _notifications(
        session,
        applied,
        plan,
        org_id=org_id,
        summary=summary,
        now=now,
        settings=settings,
        request_id=request_id,
        api_key_id=api_key_id,
    )
    return {
        **summary,
        "pattern_ids": _ids(pid for pid in ordered if pid),
        "resolved_pattern_ids": _ids(pid for pid, _, _ in applied.resolved),
        "notification": _json_ids(notification),
    }


def _json_ids(notification: dict[str, Any]) -> dict[str, Any]:
    result = {**notification, "outbox_ids": _ids(notification["outbox_ids"])}
    if isinstance(notification.get("status_changed"), dict):
        result["status_changed"] = _json_ids(notification["status_changed"])
    return result
