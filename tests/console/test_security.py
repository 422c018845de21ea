"""Console refusals: CSRF, roles, org isolation, escaping (docs/reference/console.md, safety)."""

from __future__ import annotations

import uuid

import pytest

from tests.console.conftest import make_dead, seed_agent, seed_pattern
from tests.support import make_tenant


def _status(client, tenant, pattern_id) -> str:  # type: ignore[no-untyped-def]
    return client.get(f"/api/v1/patterns/{pattern_id}", headers=tenant.headers).json()["data"][
        "status"
    ]


@pytest.mark.parametrize(
    ("token", "origin"),
    [
        (None, "http://testserver"),  # missing token
        ("0" * 64, "http://testserver"),  # wrong token
        ("valid", "https://evil.example"),  # foreign Origin, even with the right token
        ("valid", "null"),  # opaque origin (sandboxed frame, data: URL)
    ],
)
def test_a_forged_form_is_refused_and_changes_nothing(
    client, app, admin, browser_for, token, origin
) -> None:
    pattern_id = seed_pattern(
        app.state.engine, admin.org_id, seed_agent(app.state.engine, admin.org_id)
    )
    browser = browser_for(admin)
    path = f"/console/patterns/{pattern_id}"
    sent = browser.csrf(path) if token == "valid" else token
    response = browser.post(f"{path}/status", {"status": "diagnosed"}, token=sent, origin=origin)
    assert response.status_code == 403
    assert "CSRF" in response.text
    assert _status(client, admin, pattern_id) == "detected"


def test_a_token_from_another_session_is_refused(client, app, admin, browser_for) -> None:
    pattern_id = seed_pattern(app.state.engine, admin.org_id, None)
    other = browser_for(admin).csrf()
    browser = browser_for(admin)
    response = browser.post(
        f"/console/patterns/{pattern_id}/status", {"status": "diagnosed"}, token=other
    )
    assert response.status_code == 403 and _status(client, admin, pattern_id) == "detected"


def test_sign_in_from_another_site_is_refused(client, admin) -> None:
    response = client.post(
        "/console/login",
        data={"api_key": admin.api_key},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert response.status_code == 403 and "set-cookie" not in response.headers


def test_a_viewer_write_is_refused_with_403(client, app, admin, browser_for) -> None:
    pattern_id = seed_pattern(app.state.engine, admin.org_id, None)
    make_dead(app.state.engine, app.state.settings, admin.org_id, now=app.state.clock.now())
    viewer = make_tenant(app.state.engine, role="viewer", org_id=admin.org_id)
    member = make_tenant(app.state.engine, role="member", org_id=admin.org_id)
    for tenant, path, data in (
        (viewer, f"/console/patterns/{pattern_id}/status", {"status": "diagnosed"}),
        (member, "/console/schedule/run", {"dry_run": "on"}),
        (member, "/console/schedule/policy", {"enabled": "on"}),
        (member, "/console/notifications/replay", {}),
    ):
        browser = browser_for(tenant)
        response = browser.post(path, data, token=browser.csrf())
        assert response.status_code == 403, (tenant.role, path)
        assert "FORBIDDEN" in response.text
    assert _status(client, admin, pattern_id) == "detected"
    dead = client.get(
        "/api/v1/system/notifications/outbox", headers=admin.headers, params={"status": "dead"}
    )
    assert dead.json()["data"]["total_count"] == 1
    policy = client.get("/api/v1/system/contracts/drift-policy", headers=admin.headers).json()[
        "data"
    ]
    assert policy["enabled"] is False


def test_a_key_of_org_a_sees_nothing_of_org_b(client, app, admin, browser_for) -> None:
    other = make_tenant(app.state.engine, role="admin", name="Other org")
    agent_b = seed_agent(app.state.engine, other.org_id, name="secret-agent-b")
    pattern_b = seed_pattern(app.state.engine, other.org_id, agent_b, title="secret pattern b")
    make_dead(app.state.engine, app.state.settings, other.org_id, now=app.state.clock.now())
    browser = browser_for(admin)
    for path in (
        f"/console/agents/{agent_b}",
        f"/console/patterns/{pattern_b}",
        f"/console/drift?agent_id={agent_b}",
        f"/console/agents/{uuid.uuid4()}",
    ):
        response = browser.get(path)
        assert response.status_code == 404, path
        assert "secret" not in response.text
    for path in (
        "/console",
        "/console/drift?min_drift=none&include_healthy=true",
        "/console/patterns",
        f"/console/patterns?agent_id={agent_b}",
        "/console/schedule",
        "/console/notifications",
    ):
        response = browser.get(path)
        assert response.status_code == 200 and "secret" not in response.text, path
        assert 'data-testid="dead-total">0' in response.text or "dead-total" not in response.text
    token = browser.csrf()
    response = browser.post(
        f"/console/patterns/{pattern_b}/status", {"status": "diagnosed"}, token=token
    )
    assert response.status_code == 404 and _status(client, other, pattern_b) == "detected"
    switch = browser.post("/console/org", {"org_id": str(other.org_id)}, token=token)
    assert switch.status_code == 403 and "ORG_FORBIDDEN" in switch.text


def test_an_agent_named_like_a_script_is_rendered_inert(app, admin, browser_for) -> None:
    name = "<script>alert(1)</script>"
    agent_id = seed_agent(app.state.engine, admin.org_id, name=name)
    seed_pattern(
        app.state.engine, admin.org_id, agent_id, title=f'"><img src=x onerror=alert(2)>{name}'
    )
    browser = browser_for(admin)
    for path in (f"/console/agents/{agent_id}", "/console/drift", "/console/patterns"):
        html = browser.get(path).text
        assert "<script" not in html and "<img" not in html, path
    assert (
        "&lt;script&gt;alert(1)&lt;/script&gt;" in browser.get(f"/console/agents/{agent_id}").text
    )
