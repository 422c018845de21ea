"""Every state gauge of GET /metrics equals the API's own answer, before and after changes."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event

from driftwarden.api.app import create_app
from driftwarden.metrics import state
from driftwarden.settings import Settings
from tests.metrics.helpers import scrape, series, value
from tests.support import Tenant, make_tenant, seed_agent_bindings

V1 = "/api/v1"
LEVELS = ("none", "warning", "breaking", "invalid")
# (current, bound) pairs and the drift the reference's table gives them
PAIRS = [
    ("2.0.0", "1.4.2"),
    ("1.5.0", "1.4.2"),
    ("1.0.0", "v1.0.0"),
    ("1.0.0", "1.0.0"),
    ("0.4.0", "0.3.1"),
    ("1.0.0", None),
]


def seed(engine: Engine, org_id: uuid.UUID, pairs: list[tuple[str, str | None]], name: str) -> None:
    seed_agent_bindings(
        engine, org_id, pairs, name=name, key=lambda n: f"{name}-{n}", enabled=lambda n: n % 2 == 0
    )


def ok(response) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code in (200, 201), response.text
    return response.json()["data"]


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


@pytest.fixture
def beta(engine: Engine) -> Tenant:
    return make_tenant(engine, role="admin", name="Beta")


def assert_drift_matches(client: TestClient, samples, tenant: Tenant) -> None:
    scan = ok(
        client.get(
            f"{V1}/contracts/drift", headers=tenant.headers, params={"include_healthy": "true"}
        )
    )
    for level in LEVELS:
        assert (
            value(samples, "driftwarden_bindings", org_id=str(tenant.org_id), drift=level)
            == scan["counts"][level]
        )


def open_patterns(client: TestClient, tenant: Tenant) -> dict[tuple[str, str], int]:
    items = ok(client.get(f"{V1}/patterns", headers=tenant.headers, params={"limit": 200}))["items"]
    counts: dict[tuple[str, str], int] = {}
    for item in items:
        if item["status"] not in ("resolved", "wont_fix"):  # the closed statuses of the reference
            counts[(item["primary_tag"], item["priority"])] = (
                counts.get((item["primary_tag"], item["priority"]), 0) + 1
            )
    return counts


def metric_patterns(samples, tenant: Tenant) -> dict[tuple[str, str], int]:
    return {
        (dict(labels)["primary_tag"], dict(labels)["priority"]): int(v)
        for labels, v in series(samples, "driftwarden_patterns_open").items()
        if dict(labels)["org_id"] == str(tenant.org_id) and v
    }


def policy_schedule(client: TestClient, tenant: Tenant) -> dict:
    data = ok(client.get(f"{V1}/system/contracts/drift/schedule-status", headers=tenant.headers))
    return next(item for item in data["items"] if item["is_policy_schedule"])


def schedule_flags(samples, tenant: Tenant, name: str = "daily") -> dict[str, float]:
    return {
        dict(labels)["status"]: v
        for labels, v in series(samples, "driftwarden_schedule_status").items()
        if dict(labels)["org_id"] == str(tenant.org_id) and dict(labels)["schedule_name"] == name
    }


def outbox_counts(client: TestClient, global_admin: Tenant) -> dict[str, int]:
    return {
        status: ok(
            client.get(
                f"{V1}/system/notifications/outbox",
                headers=global_admin.headers,
                params={"status": status},
            )
        )["total_count"]
        for status in ("pending", "sending", "sent", "dead")
    }


def test_drift_counts_equal_the_scan_per_org_after_changes(client, engine, admin, beta) -> None:
    seed(engine, admin.org_id, PAIRS, "alpha-bot")
    seed(engine, beta.org_id, PAIRS[:2], "beta-bot")
    samples = scrape(client)
    assert_drift_matches(client, samples, admin)
    assert_drift_matches(client, samples, beta)
    # by hand from the drift table: breaking 2.0.0/1.4.2 and 0.4.0/0.3.1, invalid v1.0.0 and null
    assert [
        value(samples, "driftwarden_bindings", org_id=str(admin.org_id), drift=d) for d in LEVELS
    ] == [1, 1, 2, 2]
    scan = ok(
        client.get(f"{V1}/contracts/drift", headers=admin.headers, params={"min_drift": "breaking"})
    )
    gone = next(item for item in scan["items"] if item["drift"] == "breaking")
    deleted = client.delete(
        f"{V1}/agents/{gone['agent_id']}/bindings/{gone['binding_id']}", headers=admin.headers
    )
    assert deleted.status_code in (200, 204), deleted.text
    samples = scrape(client)
    assert_drift_matches(client, samples, admin)
    assert value(samples, "driftwarden_bindings", org_id=str(admin.org_id), drift="breaking") == 1


def test_pairs_first_seen_after_a_scrape_are_classified_and_remembered(
    client, engine, session_factory, clock, admin
) -> None:
    seed(engine, admin.org_id, PAIRS[:3], "alpha-bot")
    assert_drift_matches(client, scrape(client), admin)  # the app now knows these pairs
    seed(engine, admin.org_id, [("3.0.0", "3.0.0"), ("3.1.0", "3.0.9"), ("4.0.0", "1.0")], "new")
    assert_drift_matches(client, scrape(client), admin)
    remembered = state.PairLevels()
    with session_factory() as session:
        state.read_snapshot(session, now=clock.now(), levels=remembered)
    assert ("3.0.9", "3.1.0") in remembered.levels
    forgetful = state.PairLevels(limit=0)  # past its bound: every scrape classifies afresh
    with session_factory() as session:
        warm = state.read_snapshot(session, now=clock.now(), levels=remembered)
        cold = state.read_snapshot(session, now=clock.now(), levels=forgetful)
    assert warm.bindings == cold.bindings
    assert forgetful.levels == {}


def test_open_patterns_equal_the_pattern_list_after_a_close(client, engine, admin) -> None:
    seed(engine, admin.org_id, PAIRS, "alpha-bot")
    ok(
        client.post(
            f"{V1}/contracts/drift/promote-patterns",
            headers={**admin.headers, **key()},
            json={"min_drift": "warning"},
        )
    )
    expected = open_patterns(client, admin)
    assert sum(expected.values()) >= 1
    assert metric_patterns(scrape(client), admin) == expected
    items = ok(client.get(f"{V1}/patterns", headers=admin.headers, params={"limit": 200}))["items"]
    ok(
        client.patch(
            f"{V1}/patterns/{items[0]['id']}", headers=admin.headers, json={"status": "wont_fix"}
        )
    )
    after = open_patterns(client, admin)
    assert sum(after.values()) == sum(expected.values()) - 1
    assert metric_patterns(scrape(client), admin) == after


def test_schedule_status_follows_the_api_and_a_disabled_policy_still_triggered(
    client, engine, clock, admin, beta
) -> None:
    seed(engine, admin.org_id, PAIRS[:1], "alpha-bot")
    ok(
        client.post(
            f"{V1}/system/contracts/drift-policy", headers=admin.headers, json={"enabled": True}
        )
    )
    before = schedule_flags(scrape(client), admin)
    assert (
        policy_schedule(client, admin)["status"] == "new"
        and before["new"] == 1
        and sum(before.values()) == 1
    )
    ok(
        client.post(
            f"{V1}/system/contracts/drift/schedule-run",
            headers={**admin.headers, **key()},
            json={"org_id": str(admin.org_id)},
        )
    )
    ok(
        client.post(
            f"{V1}/system/contracts/drift/trigger", headers={**beta.headers, **key()}, json={}
        )
    )
    for hours, expected in ((0, "up"), (49, "down")):
        clock.advance(hours=hours)
        samples = scrape(client)
        api = policy_schedule(client, admin)
        assert api["status"] == expected
        flags = schedule_flags(samples, admin)
        assert flags == {s: float(s == expected) for s in ("new", "up", "late", "down", "disabled")}
        executed = datetime.fromisoformat(
            api["last_executed_at"].replace("Z", "+00:00")
        ).timestamp()
        assert value(
            samples,
            "driftwarden_schedule_last_executed_timestamp_seconds",
            org_id=str(admin.org_id),
            schedule_name="daily",
        ) == pytest.approx(executed)
        if hours == 0:  # beta's policy is disabled, yet the schedule was triggered in this window
            assert schedule_flags(samples, beta)["disabled"] == 1
    assert (
        schedule_flags(scrape(client), beta) == {}
    )  # two days later nobody triggers it: not a schedule


def test_outbox_gauges_equal_the_outbox_list(client, clock, admin, global_admin, receiver) -> None:
    receiver.default = (500, {}, 0.0)
    ok(
        client.post(
            f"{V1}/system/contracts/drift-policy",
            headers=admin.headers,
            json={"enabled": True, "alert_enabled": True},
        )
    )
    run = ok(
        client.post(
            f"{V1}/system/contracts/drift/schedule-run",
            headers={**admin.headers, **key()},
            json={"org_id": str(admin.org_id), "force_notify": True},
        )
    )
    assert run["notify"]["outcome"] == "failed"
    clock.advance(minutes=20)
    samples = scrape(client)
    expected = outbox_counts(client, global_admin)
    assert expected["pending"] >= 1
    for status, count in expected.items():
        assert value(samples, "driftwarden_outbox_messages", status=status) == count
    assert value(samples, "driftwarden_outbox_oldest_pending_age_seconds") == pytest.approx(20 * 60)
    receiver.default = (200, {}, 0.0)
    clock.advance(minutes=1)
    ok(
        client.post(
            f"{V1}/system/notifications/outbox/drain", headers=global_admin.headers, json={}
        )
    )
    samples = scrape(client)
    for status, count in outbox_counts(client, global_admin).items():
        assert value(samples, "driftwarden_outbox_messages", status=status) == count
    assert value(samples, "driftwarden_outbox_oldest_pending_age_seconds") == 0


def test_without_org_labels_the_values_are_sums_over_orgs(
    settings, engine, clock, admin, beta
) -> None:  # type: ignore[no-untyped-def]
    seed(engine, admin.org_id, PAIRS, "alpha-bot")
    seed(engine, beta.org_id, PAIRS[:3], "beta-bot")
    app = create_app(
        settings.model_copy(update={"metrics_org_labels": False}), engine=engine, clock=clock
    )
    with TestClient(app) as client:
        samples = scrape(client)
        totals = dict.fromkeys(LEVELS, 0)
        for tenant in (admin, beta):
            scan = ok(
                client.get(
                    f"{V1}/contracts/drift",
                    headers=tenant.headers,
                    params={"include_healthy": "true"},
                )
            )
            for level in LEVELS:
                totals[level] += scan["counts"][level]
    assert {
        level: value(samples, "driftwarden_bindings", drift=level) for level in LEVELS
    } == totals
    assert not any("org_id" in dict(labels) for (_, labels) in samples)


def test_the_cache_serves_one_snapshot_for_metrics_cache_seconds(
    settings, engine, clock, admin
) -> None:  # type: ignore[no-untyped-def]
    app = create_app(
        settings.model_copy(update={"metrics_cache_seconds": 3600}), engine=engine, clock=clock
    )
    with TestClient(app) as client:
        first = scrape(client)
        seed(engine, admin.org_id, PAIRS, "alpha-bot")
        assert (
            value(scrape(client), "driftwarden_bindings", org_id=str(admin.org_id), drift="invalid")
            == value(first, "driftwarden_bindings", org_id=str(admin.org_id), drift="invalid")
            == 0
        )


def _statements(engine: Engine, session_factory, clock) -> int:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    listener = lambda *args: seen.append(args[2])  # noqa: E731 - a one-line event listener
    event.listen(engine, "before_cursor_execute", listener)
    try:
        with session_factory() as session:
            state.read_snapshot(session, now=clock.now())
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    return len([s for s in seen if s.lstrip().upper().startswith("SELECT")])


def test_the_statement_count_does_not_grow_with_orgs(engine, session_factory, clock, admin) -> None:
    seed(engine, admin.org_id, PAIRS, "alpha-bot")
    one = _statements(engine, session_factory, clock)
    for n in range(6):
        tenant = make_tenant(engine, name=f"Org {n}")
        seed(engine, tenant.org_id, PAIRS, f"bot-{n}")
    assert one == _statements(engine, session_factory, clock) == 4


def test_settings_fixture_is_cache_free(settings: Settings) -> None:
    assert settings.metrics_cache_seconds == 0
