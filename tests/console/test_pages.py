"""Console pages: sign-in, every page for the roles, the overview's figures equal the API's."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import event

from driftwarden.console import login_links
from tests.console.conftest import make_dead, seed_agent, seed_pattern
from tests.support import make_tenant

PAGES = (
    "/console",
    "/console/drift",
    "/console/patterns",
    "/console/schedule",
    "/console/notifications",
)


def _testid(html: str, name: str) -> str:
    match = re.search(rf'data-testid="{re.escape(name)}"[^>]*>([^<]*)<', html)
    assert match, f"no data-testid={name}"
    return match.group(1).strip()


@pytest.mark.parametrize("path", [*PAGES, "/console/agents/00000000-0000-0000-0000-000000000001"])
def test_a_page_without_a_session_redirects_to_sign_in(client, path) -> None:
    response = client.get(path + "?limit=5", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=" + quote(
        path + "?limit=5", safe=""
    )


def test_sign_in_sets_a_strict_httponly_cookie_holding_the_key_id_only(client, admin) -> None:
    form = client.get("/console/login")
    assert form.status_code == 200 and 'name="api_key"' in form.text
    response = client.post(
        "/console/login",
        data={"api_key": admin.api_key, "next": "/console/drift?limit=5"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/console/drift?limit=5"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("dw_session=")
    for attribute in ("HttpOnly", "Path=/console", "SameSite=strict"):
        assert attribute.lower() in cookie.lower()
    assert "secure" not in cookie.lower()  # plain http and CONSOLE_COOKIE_SECURE unset
    assert admin.api_key not in cookie and admin.api_key[4:] not in cookie
    assert client.get("/console/drift").status_code == 200


@pytest.mark.parametrize(
    "given",
    [
        "https://evil.example/",
        "//evil.example/console",
        "/api/v1/agents",
        "/console\\@evil.example",
    ],
)
def test_sign_in_only_follows_console_paths(client, admin, given) -> None:
    response = client.post(
        "/console/login", data={"api_key": admin.api_key, "next": given}, follow_redirects=False
    )
    assert response.headers["location"] == "/console"


@pytest.mark.parametrize("key", ["", "dwk_not-a-key", "garbage"])
def test_a_wrong_key_gets_the_form_again_with_401_and_no_cookie(client, admin, key) -> None:
    response = client.post("/console/login", data={"api_key": key}, follow_redirects=False)
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert 'data-testid="login-error"' in response.text


def test_a_revoked_key_ends_the_session(client, app, admin, global_admin, browser_for) -> None:
    viewer = make_tenant(app.state.engine, role="viewer", org_id=admin.org_id)
    browser = browser_for(viewer)
    assert browser.get("/console").status_code == 200
    revoked = client.post(
        f"/api/v1/system/api-keys/{viewer.api_key_id}/revoke", headers=admin.headers
    )
    assert revoked.status_code == 200, revoked.text
    response = browser.get("/console")
    assert response.status_code == 303 and response.headers["location"].startswith("/console/login")
    assert (
        'dw_session=""' in response.headers["set-cookie"]
        or "Max-Age=0" in response.headers["set-cookie"]
    )


def test_a_tampered_cookie_is_no_session(client, admin, browser_for) -> None:
    browser = browser_for(admin)
    value = browser.client.cookies.get("dw_session")
    browser.client.cookies.clear()
    browser.client.cookies.set(
        "dw_session", value[:-2] + ("AA" if not value.endswith("AA") else "BB"), path="/console"
    )
    assert browser.get("/console").status_code == 303


def test_logout_needs_the_token_and_ends_the_session(admin, browser_for) -> None:
    browser = browser_for(admin)
    assert browser.post("/console/logout", {}).status_code == 403
    token = browser.csrf()
    response = browser.post("/console/logout", {}, token=token)
    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    assert browser.get("/console").status_code == 303


def test_overview_figures_equal_the_api_and_every_hook_is_there(
    client, app, admin, browser_for
) -> None:
    engine = app.state.engine
    agent_id = seed_agent(engine, admin.org_id)
    seed_agent(engine, admin.org_id, name="other", plan=(("3.0.0", "not-semver"),))
    seed_pattern(engine, admin.org_id, agent_id)
    seed_pattern(engine, admin.org_id, agent_id, status="resolved")
    make_dead(engine, app.state.settings, admin.org_id, now=app.state.clock.now())
    client.post(
        "/api/v1/system/contracts/drift-policy",
        headers=admin.headers,
        json={"enabled": True, "schedule_name": "nightly"},
    )
    api = client.get("/api/v1/contracts/drift", headers=admin.headers).json()["data"]["counts"]
    assert api == {"none": 1, "warning": 1, "breaking": 2, "invalid": 1}  # drawn above
    page = browser_for(admin).get("/console")
    assert page.status_code == 200
    for level, count in api.items():
        assert _testid(page.text, f"drift-count-{level}") == str(count)
    assert _testid(page.text, "patterns-open-count") == "1"
    assert _testid(page.text, "outbox-count-dead") == "1"
    assert _testid(page.text, "outbox-count-pending") == "0"
    assert _testid(page.text, "schedule-status-nightly") == "new"
    assert 'data-testid="chart-drift"' in page.text and 'data-testid="chart-outcomes"' in page.text


def test_security_headers_on_pages_redirects_and_static(client, admin, browser_for) -> None:
    browser = browser_for(admin)
    for response in (
        browser.get("/console"),
        client.get("/console/drift", follow_redirects=False),
        client.get("/console/static/console.css"),
        client.get("/console/login"),
    ):
        csp = response.headers["content-security-policy"]
        assert (
            "script-src 'self'" in csp
            and "frame-ancestors 'none'" in csp
            and "unsafe-inline" not in csp
        )
        assert response.headers["referrer-policy"] == "same-origin"
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "script" not in browser.get("/console").text.lower().replace("<noscript", "")
    assert "/console" not in client.get("/openapi.json").text


def test_every_page_renders_for_a_viewer_without_write_controls(app, admin, browser_for) -> None:
    agent_id = seed_agent(app.state.engine, admin.org_id)
    pattern_id = seed_pattern(app.state.engine, admin.org_id, agent_id)
    viewer = make_tenant(app.state.engine, role="viewer", org_id=admin.org_id)
    browser = browser_for(viewer)
    for path in (*PAGES, f"/console/agents/{agent_id}", f"/console/patterns/{pattern_id}"):
        response = browser.get(path)
        assert response.status_code == 200, (path, response.text)
        for form in ("status-form", "policy-form", "run-form", "replay-form"):
            assert f'data-testid="{form}"' not in response.text, (path, form)
    admin_page = browser_for(admin).get(f"/console/patterns/{pattern_id}")
    assert 'data-testid="status-form"' in admin_page.text


def test_drift_page_filters_and_pages(app, admin, browser_for) -> None:
    agent_id = seed_agent(app.state.engine, admin.org_id)
    browser = browser_for(admin)
    first = browser.get(
        "/console/drift", params={"limit": 2, "agent_id": "", "definition_type": ""}
    )
    assert first.status_code == 200
    assert first.text.count('<tr><td><span class="status level-') == 2
    assert 'data-testid="page-next"' in first.text
    last = browser.get("/console/drift", params={"limit": 2, "offset": 2})
    assert last.text.count('<tr><td><span class="status level-') == 1  # 3 findings, none left out
    healthy = browser.get(
        "/console/drift",
        params={
            "min_drift": "none",
            "include_healthy": "true",
            "agent_id": str(agent_id),
            "definition_type": "gate",
        },
    )
    assert healthy.text.count('<tr><td><span class="status level-') == 4
    breaking = browser.get("/console/drift", params={"min_drift": "breaking"})
    assert breaking.text.count('level-breaking">breaking') == 2
    bad = browser.get("/console/drift", params={"min_drift": "severe"})
    assert bad.status_code == 422 and "VALIDATION_ERROR" in bad.text


def test_patterns_page_filters(app, admin, browser_for) -> None:
    agent_id = seed_agent(app.state.engine, admin.org_id)
    seed_pattern(app.state.engine, admin.org_id, agent_id, title="open one")
    seed_pattern(app.state.engine, admin.org_id, agent_id, title="closed one", status="resolved")
    browser = browser_for(admin)
    page = browser.get(
        "/console/patterns", params={"status": "resolved", "priority": "", "agent_id": ""}
    )
    assert "closed one" in page.text and "open one" not in page.text
    assert browser.get("/console/patterns", params={"priority": "urgent"}).status_code == 422


def test_a_member_changes_a_pattern_status_and_the_history_shows_it(
    app, admin, browser_for
) -> None:
    agent_id = seed_agent(app.state.engine, admin.org_id)
    pattern_id = seed_pattern(app.state.engine, admin.org_id, agent_id)
    member = make_tenant(app.state.engine, role="member", org_id=admin.org_id)
    browser = browser_for(member)
    path = f"/console/patterns/{pattern_id}"
    response = browser.post(
        f"{path}/status", {"status": "diagnosed", "note": "looked"}, token=browser.csrf(path)
    )
    assert response.status_code == 303 and response.headers["location"] == f"{path}?done=status"
    page = browser.get(path)
    assert _testid(page.text, "pattern-status") == "diagnosed" and "looked" in page.text
    jump = browser.post(f"{path}/status", {"status": "resolved"}, token=browser.csrf(path))
    assert jump.status_code == 409 and "PATTERN_INVALID_TRANSITION" in jump.text
    # a NUL in a form field reached PostgreSQL's text (a 500); it is refused before any route
    nul = browser.post(
        f"{path}/status", {"status": "triaged", "note": "a\x00b"}, token=browser.csrf(path)
    )
    assert nul.status_code == 422 and "NUL" in nul.text


def test_run_now_sends_a_dry_run_schedule_run_and_shows_the_six_signals(
    app, admin, browser_for
) -> None:
    seed_agent(app.state.engine, admin.org_id)
    browser = browser_for(admin)
    page = browser.get("/console/schedule")
    assert 'name="dry_run" checked' in page.text
    response = browser.post(
        "/console/schedule/run", {"dry_run": "on"}, token=browser.csrf("/console/schedule")
    )
    assert response.status_code == 200, response.text
    assert (
        _testid(response.text, "run-trigger-outcome") == "policy_disabled"
    )  # default policy: disabled
    signals = re.findall(r"<td><code>(data\.[a-z_.]+)</code></td>", response.text)
    assert len(signals) == 6 and len(set(signals)) == 6


def test_an_admin_edits_the_policy(client, admin, browser_for) -> None:
    browser = browser_for(admin)
    token = browser.csrf("/console/schedule")
    response = browser.post(
        "/console/schedule/policy",
        {
            "enabled": "on",
            "min_drift": "warning",
            "schedule_name": "hourly",
            "scan_limit": "50",
            "schedule_window_minutes": "60",
        },
        token=token,
    )
    assert response.status_code == 303
    policy = client.get("/api/v1/system/contracts/drift-policy", headers=admin.headers).json()[
        "data"
    ]
    assert (
        policy["enabled"],
        policy["min_drift"],
        policy["schedule_name"],
        policy["scan_limit"],
        policy["schedule_window_minutes"],
        policy["alert_enabled"],
    ) == (True, "warning", "hourly", 50, 60, False)
    bad = browser.post("/console/schedule/policy", {"schedule_window_minutes": "1"}, token=token)
    assert bad.status_code == 422
    not_a_number = browser.post("/console/schedule/policy", {"scan_limit": "many"}, token=token)
    assert not_a_number.status_code == 422
    # the form's numbers arrive as text: an emptied one leaves its value, "0" is a value
    emptied = {"enabled": "on", "scan_limit": "", "alert_cooldown_minutes": "0"}
    assert browser.post("/console/schedule/policy", emptied, token=token).status_code == 303
    after = client.get("/api/v1/system/contracts/drift-policy", headers=admin.headers).json()
    assert (after["data"]["scan_limit"], after["data"]["alert_cooldown_minutes"]) == (50, 0)


def test_an_admin_replays_a_dead_letter(client, app, admin, browser_for) -> None:
    outbox_id = make_dead(
        app.state.engine, app.state.settings, admin.org_id, now=app.state.clock.now()
    )
    browser = browser_for(admin)
    page = browser.get("/console/notifications", params={"status": "dead"})
    assert _testid(page.text, "dead-total") == "1" and "127.0.0.1:9/hook" not in page.text
    response = browser.post(
        "/console/notifications/replay", {}, token=browser.csrf("/console/notifications")
    )
    assert (
        response.status_code == 303
        and response.headers["location"] == "/console/notifications?replayed=1"
    )
    row = client.get(f"/api/v1/system/notifications/outbox/{outbox_id}", headers=admin.headers)
    statuses = client.get("/api/v1/system/notifications/outbox", headers=admin.headers).json()[
        "data"
    ]["items"]
    assert [m["status"] for m in statuses if m["id"] == str(outbox_id)] == ["pending"], row.text


def test_a_one_time_link_signs_in_once_within_ten_minutes(app, admin, client) -> None:
    now = app.state.clock.now()
    url = login_links.issue_one_time_url(
        app.state.session_factory,
        api_key_id=admin.api_key_id,
        base_url="http://testserver/",
        now=now,
    )
    assert url.startswith("http://testserver/console/login/link?token=")
    first = client.get(url, follow_redirects=False)
    assert first.status_code == 303 and "dw_session=" in first.headers["set-cookie"]
    assert client.get("/console", follow_redirects=False).status_code == 200
    client.cookies.clear()
    again = client.get(url, follow_redirects=False)
    assert again.status_code == 401 and "set-cookie" not in again.headers
    late = login_links.issue_one_time_url(
        app.state.session_factory,
        api_key_id=admin.api_key_id,
        base_url="http://testserver",
        now=now - timedelta(minutes=10, seconds=1),
    )
    assert client.get(late, follow_redirects=False).status_code == 401


def test_a_global_key_switches_org(app, global_admin, browser_for) -> None:
    first = make_tenant(app.state.engine, role="admin", name="Alpha")
    second = make_tenant(app.state.engine, role="admin", name="Beta")
    seed_agent(app.state.engine, second.org_id, plan=(("2.0.0", "1.0.0"),))
    browser = browser_for(global_admin)
    page = browser.get("/console")
    assert (
        'data-testid="org-switcher"' in page.text
        and _testid(page.text, "drift-count-breaking") == "0"
    )
    assert f'value="{first.org_id}" selected' in page.text
    switched = browser.post("/console/org", {"org_id": str(second.org_id)}, token=browser.csrf())
    assert switched.status_code == 303
    assert _testid(browser.get("/console").text, "drift-count-breaking") == "1"


def _statements(engine, call) -> int:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_the_overview_runs_a_fixed_number_of_statements_whatever_the_agents(
    app, admin, browser_for
) -> None:
    browser = browser_for(admin)
    browser.get("/console")  # warm: the signing key is read once per process
    seed_agent(app.state.engine, admin.org_id)
    few = _statements(app.state.engine, lambda: browser.get("/console"))
    for n in range(6):
        agent_id = seed_agent(app.state.engine, admin.org_id, name=f"bot-{n}")
        seed_pattern(app.state.engine, admin.org_id, agent_id)
    many = _statements(app.state.engine, lambda: browser.get("/console"))
    assert few == many
