"""Issue patterns over HTTP.

docs/reference/resources.md#issue-patterns

Create, read, filter, and every status change checked, recorded and notified.
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from tests.support import make_tenant

API = "/api/v1"
FLOW = ["diagnosed", "assigned", "in_progress", "fixed", "verifying", "resolved"]


def _create(client: TestClient, who, agent_id=None, **fields) -> dict:
    body = {"title": "PII leaks in summaries", "primary_tag": "pii_leak", **fields}
    path = f"{API}/agents/{agent_id}/patterns" if agent_id else f"{API}/patterns"
    response = client.post(path, headers=who.headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def _patch(client: TestClient, who, pattern_id: str, **body):
    return client.patch(f"{API}/patterns/{pattern_id}", headers=who.headers, json=body)


def test_create_read_and_filter(client: TestClient, member, world) -> None:
    bot, other = world.agent("bot"), world.agent("other")
    agent_level = _create(
        client, member, bot, priority="high", related_tags=["gate:pii"], evidence={"n": 3}
    )
    assert (
        agent_level["agent_id"] == str(bot)
        and agent_level["status"] == "detected"
        and agent_level["is_open"]
    )
    assert (
        agent_level["occurrence_count"] == 1
        and agent_level["first_seen_at"] == "2026-11-25T12:00:00Z"
    )
    assert agent_level["status_history"] == [
        {
            "from": None,
            "to": "detected",
            "at": "2026-11-25T12:00:00Z",
            "by_api_key_id": str(member.api_key_id),
            "note": None,
            "forced": False,
        }
    ]
    org_level = _create(client, member, primary_tag="contract_drift_alert_delivery", priority="low")
    assert org_level["agent_id"] is None
    _create(client, member, other, priority="high")

    def ids(query: str) -> set[str]:
        response = client.get(f"{API}/patterns?{query}", headers=member.headers)
        assert response.status_code == 200, response.text
        return {item["id"] for item in response.json()["data"]["items"]}

    assert ids(f"agent_id={bot}") == {agent_level["id"]}
    assert ids("primary_tag=contract_drift_alert_delivery") == {org_level["id"]}
    assert len(ids("priority=high")) == 2 and ids("priority=low") == {org_level["id"]}
    assert len(ids("status=detected")) == 3 and ids("status=resolved") == set()
    listed = client.get(f"{API}/agents/{bot}/patterns", headers=member.headers).json()["data"]
    assert [i["id"] for i in listed["items"]] == [agent_level["id"]] and listed["total_count"] == 1
    got = client.get(f"{API}/patterns/{org_level['id']}", headers=member.headers).json()["data"]
    assert got == org_level


def test_org_isolation_and_roles(client: TestClient, admin, member, world, engine) -> None:
    pattern = _create(client, member, world.agent("bot"))
    stranger = make_tenant(engine, role="admin", name="Other")
    assert (
        client.get(f"{API}/patterns/{pattern['id']}", headers=stranger.headers).status_code == 404
    )
    assert _patch(client, stranger, pattern["id"], status="diagnosed").status_code == 404
    viewer = make_tenant(engine, role="viewer", org_id=admin.org_id)
    assert client.get(f"{API}/patterns/{pattern['id']}", headers=viewer.headers).status_code == 200
    assert (
        client.post(
            f"{API}/patterns", headers=viewer.headers, json={"title": "t", "primary_tag": "t"}
        ).status_code
        == 403
    )
    denied = _patch(client, viewer, pattern["id"], status="diagnosed")
    assert (
        denied.status_code == 403 and denied.json()["error"]["details"]["required_role"] == "member"
    )
    other_agent = client.post(
        f"{API}/agents/{world.agent('x')}/patterns",
        headers=stranger.headers,
        json={"title": "t", "primary_tag": "t"},
    )
    assert other_agent.status_code == 404


def test_dedupe_key_allows_one_open_pattern(client: TestClient, member, world) -> None:
    bot = world.agent("bot")
    first = _create(client, member, bot, dedupe_key="pii:bot")
    again = client.post(
        f"{API}/agents/{bot}/patterns",
        headers=member.headers,
        json={"title": "again", "primary_tag": "pii_leak", "dedupe_key": "pii:bot"},
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "PATTERN_EXISTS"
    assert again.json()["error"]["details"]["pattern_id"] == first["id"]
    assert _patch(client, member, first["id"], status="wont_fix").status_code == 200
    second = _create(client, member, bot, dedupe_key="pii:bot")
    reopen = _patch(client, member, first["id"], status="regressed", force=True)
    assert reopen.status_code == 403  # a member may not force
    assert _patch(client, member, second["id"], status="diagnosed").status_code == 200


def test_full_flow_regression_and_wont_fix_are_recorded_and_notified(
    client: TestClient, member, world, clock
) -> None:
    pattern = _create(client, member, world.agent("bot"))
    steps = [(s, None) for s in FLOW] + [
        ("regressed", "came back"),
        ("in_progress", None),
        ("assigned", "back"),
        ("wont_fix", "accepted risk"),
    ]
    for status, note in steps:
        clock.advance(minutes=1)
        body = {"status": status, **({"note": note} if note else {})}
        response = _patch(client, member, pattern["id"], **body)
        assert response.status_code == 200, (status, response.text)
        assert response.json()["data"]["status"] == status
    history = client.get(
        f"{API}/patterns/{pattern['id']}/history?limit=200", headers=member.headers
    ).json()["data"]
    assert history["total_count"] == len(steps) + 1
    assert [(h["from"], h["to"]) for h in history["items"][1:]] == list(
        zip(["detected"] + [s for s, _ in steps[:-1]], [s for s, _ in steps], strict=True)
    )
    assert (
        history["items"][7]["note"] == "came back"
        and history["items"][7]["at"] == "2026-11-25T12:07:00Z"
    )
    assert all(
        h["by_api_key_id"] == str(member.api_key_id) and not h["forced"] for h in history["items"]
    )
    page = client.get(
        f"{API}/patterns/{pattern['id']}/history?limit=2&offset=1", headers=member.headers
    )
    assert [h["to"] for h in page.json()["data"]["items"]] == ["diagnosed", "assigned"]
    queued = world.outbox("issue_pattern.status_changed")
    assert len(queued) == len(steps)
    last = json.loads(queued[-1].body)
    assert last["type"] == "issue_pattern.status_changed"
    assert last["data"]["pattern_id"] == pattern["id"] and last["data"]["from"] == "assigned"
    assert last["data"]["to"] == "wont_fix" and last["data"]["note"] == "accepted risk"


def test_forbidden_jumps_are_409_and_change_nothing(client: TestClient, member, world) -> None:
    pattern = _create(client, member, world.agent("bot"))
    for target in ("resolved", "fixed", "regressed", "verifying"):
        response = _patch(client, member, pattern["id"], status=target, note="skip ahead")
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "PATTERN_INVALID_TRANSITION"
        assert error["details"] == {
            "from": "detected",
            "to": target,
            "allowed": ["diagnosed", "wont_fix"],
        }
    assert _patch(client, member, pattern["id"], status="wont_fix").status_code == 200
    assert _patch(client, member, pattern["id"], status="detected").status_code == 409
    got = client.get(f"{API}/patterns/{pattern['id']}", headers=member.headers).json()["data"]
    assert [h["to"] for h in got["status_history"]] == ["detected", "wont_fix"]
    assert len(world.outbox("issue_pattern.status_changed")) == 1


def test_force_only_by_a_global_admin(
    client: TestClient, admin, member, world, global_admin
) -> None:
    pattern = _create(client, member, world.agent("bot"))
    for who in (member, admin):
        denied = _patch(client, who, pattern["id"], status="resolved", force=True)
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
        assert denied.json()["error"]["details"]["required_role"] == "admin (global)"
    forced = client.patch(
        f"{API}/patterns/{pattern['id']}?org_id={admin.org_id}",
        headers=global_admin.headers,
        json={"status": "resolved", "force": True, "note": "closed by platform"},
    )
    assert forced.status_code == 200, forced.text
    entry = forced.json()["data"]["status_history"][-1]
    assert entry["forced"] is True and entry["from"] == "detected" and entry["to"] == "resolved"
    assert entry["by_api_key_id"] == str(global_admin.api_key_id)
    allowed_with_force = _patch(client, member, pattern["id"], status="verifying", force=True)
    assert (
        allowed_with_force.status_code == 200
    )  # an allowed step needs no force, so none is checked
    assert allowed_with_force.json()["data"]["status_history"][-1]["forced"] is False


def test_reopening_onto_a_taken_dedupe_key_is_409(
    client: TestClient, member, world, global_admin, admin
) -> None:
    bot = world.agent("bot")
    old = _create(client, member, bot, dedupe_key="k")
    for status in FLOW:
        assert _patch(client, member, old["id"], status=status).status_code == 200
    new = _create(client, member, bot, dedupe_key="k")
    conflict = _patch(client, member, old["id"], status="regressed")
    assert (
        conflict.status_code == 409
        and conflict.json()["error"]["code"] == "PATTERN_DEDUPE_CONFLICT"
    )
    got = client.get(f"{API}/patterns/{old['id']}", headers=member.headers).json()["data"]
    assert got["status"] == "resolved" and len(got["status_history"]) == len(FLOW) + 1
    assert client.get(f"{API}/patterns/{new['id']}", headers=member.headers).json()["data"][
        "is_open"
    ]


def test_patch_fields_and_validation(client: TestClient, member, world) -> None:
    pattern = _create(client, member, world.agent("bot"), owner="ana")
    changed = _patch(
        client,
        member,
        pattern["id"],
        title="New title",
        priority="critical",
        owner="",
        related_tags=["a", "b:c"],
    )
    data = changed.json()["data"]
    assert (data["title"], data["priority"], data["owner"], data["related_tags"]) == (
        "New title",
        "critical",
        None,
        ["a", "b:c"],
    )
    assert len(data["status_history"]) == 1 and world.outbox() == []
    assert _patch(client, member, pattern["id"], note="just a note").status_code == 422
    assert _patch(client, member, pattern["id"], title=None).status_code == 422
    assert _patch(client, member, pattern["id"], status="closed").status_code == 422
    assert _patch(client, member, pattern["id"], unknown=1).status_code == 422
    same = _patch(client, member, pattern["id"], status="detected")
    assert same.status_code == 200 and len(same.json()["data"]["status_history"]) == 1
