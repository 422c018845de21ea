"""Exactly the reference's names and labels; the rules and the dashboard use only those."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import yaml

from driftwarden.metrics import events
from tests.metrics.helpers import scrape
from tests.metrics.test_state import PAIRS, seed

ROOT = Path(__file__).resolve().parents[2]
# Copied by hand from the reference (docs/reference/operations.md, metrics): name -> label names.
REFERENCE = {
    "driftwarden_bindings": {"org_id", "drift"},
    "driftwarden_patterns_open": {"org_id", "primary_tag", "priority"},
    "driftwarden_schedule_status": {"org_id", "schedule_name", "status"},
    "driftwarden_schedule_last_executed_timestamp_seconds": {"org_id", "schedule_name"},
    "driftwarden_outbox_messages": {"status"},
    "driftwarden_outbox_oldest_pending_age_seconds": set(),
    "driftwarden_trigger_runs_total": {"outcome"},
    "driftwarden_notify_events_total": {"outcome"},
    "driftwarden_deliveries_total": {"result"},
    "driftwarden_delivery_duration_seconds": set(),
    "driftwarden_http_requests_total": {"method", "route", "status"},
    "driftwarden_http_request_duration_seconds": {"method", "route"},
    "driftwarden_worker_job_last_success_timestamp_seconds": {"job"},
    "driftwarden_build_info": {"version"},
}
HISTOGRAM_PARTS = re.compile(r"_(bucket|count|sum)$")
NAME = re.compile(r"\bdriftwarden_[a-z_]+")


def _exposed(client, engine, admin) -> dict[str, set[str]]:  # type: ignore[no-untyped-def]
    """Scrape after enough activity that every metric has a sample."""
    seed(engine, admin.org_id, PAIRS, "alpha-bot")
    client.post(
        "/api/v1/system/contracts/drift-policy", headers=admin.headers, json={"enabled": True}
    )
    client.post(
        "/api/v1/system/contracts/drift/schedule-run",
        headers={**admin.headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"org_id": str(admin.org_id)},
    )
    client.post(
        "/api/v1/contracts/drift/promote-patterns",
        headers={**admin.headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"min_drift": "warning"},
    )
    events.record_delivery(status="sent", error_code=None, duration_seconds=0.1)
    events.record_job_success(job="outbox-drain", at=datetime.now(UTC))
    exposed: dict[str, set[str]] = {}
    for name, labels in scrape(client):
        base = name if name in REFERENCE else HISTOGRAM_PARTS.sub("", name)
        exposed.setdefault(base, set()).update(k for k, _ in labels if k != "le")
    return exposed


def test_exactly_the_reference_names_and_labels(client, engine, admin) -> None:
    assert _exposed(client, engine, admin) == REFERENCE


def _used_names() -> set[str]:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/driftwarden-rules.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((ROOT / "deploy/grafana/driftwarden.json").read_text())
    exprs += [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return {name for expr in exprs for name in NAME.findall(expr)}


def test_rules_and_dashboard_use_only_exposed_series() -> None:
    exposed = set(REFERENCE) | {
        f"{n}_{part}"
        for n in (
            "driftwarden_delivery_duration_seconds",
            "driftwarden_http_request_duration_seconds",
        )
        for part in ("bucket", "count", "sum")
    }
    used = _used_names()
    assert used and used <= exposed
    assert {
        "driftwarden_schedule_status",
        "driftwarden_outbox_messages",
        "driftwarden_bindings",
        "driftwarden_outbox_oldest_pending_age_seconds",
    } <= used
