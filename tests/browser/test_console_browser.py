"""The console in a real headless Chromium: sign in, each page, the three writes, two viewports.

Any console error, failed request, HTTP error or request leaving the server's origin fails the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from driftwarden.db.engine import make_session_factory
from driftwarden.scheduler.models import TriggerRun
from tests.browser.conftest import CHROMIUM
from tests.console.conftest import make_dead, seed_agent, seed_pattern
from tests.support import LiveServer

pytestmark = pytest.mark.browser
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "console.png"
VIEWPORTS = ((1280, 800), (390, 844))
OUTCOMES = ("executed", "executed", "deduped", "executed", "failed")


def _seed_history(engine: Any, org_id: uuid.UUID, now: Any) -> None:
    """30 days of daily triggers, drift slowly worsening, so both charts have something to show."""
    with make_session_factory(engine)() as session:
        for day in range(30, 0, -1):
            for n, outcome in enumerate(OUTCOMES[: 1 + day % 3]):
                start = now - timedelta(days=day, minutes=-n)
                counts = {
                    "none": 40 - day // 3,
                    "warning": 6 + (30 - day) // 4,
                    "breaking": 2 + (30 - day) // 6,
                    "invalid": 1 if day % 7 == 0 else 0,
                }
                session.add(
                    TriggerRun(
                        org_id=org_id,
                        schedule_name="daily",
                        window_minutes=1440,
                        window_start=start,
                        window_end=start + timedelta(days=1),
                        dedupe_key=f"seed:{day}:{n}",
                        outcome=outcome,
                        dry_run=False,
                        forced=False,
                        started_at=start,
                        finished_at=start,
                        duration_ms=12.5,
                        promote_result={"drift_counts": counts} if outcome == "executed" else None,
                    )
                )
        session.commit()


@pytest.fixture
def seeded(app: Any, client: Any, admin: Any) -> dict[str, Any]:
    engine, now = app.state.engine, app.state.clock.now()
    agent_id = seed_agent(engine, admin.org_id, name="support-bot")
    seed_agent(engine, admin.org_id, name="<script>alert(1)</script>", plan=(("3.0.0", "2.1.0"),))
    patterns = [
        seed_pattern(engine, admin.org_id, agent_id, title=f"Contract drift (breaking) #{n}")
        for n in range(len(VIEWPORTS))
    ]
    client.post(
        "/api/v1/system/contracts/drift-policy",
        headers=admin.headers,
        json={"enabled": True, "schedule_name": "daily"},
    )
    _seed_history(engine, admin.org_id, now)
    return {"agent_id": agent_id, "patterns": patterns}


@pytest.fixture
def server(app: Any) -> Iterator[LiveServer]:
    with LiveServer(app) as live:
        yield live


@pytest.fixture
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


class Watch:
    """Everything that must not happen on a page, collected as it happens."""

    def __init__(self, page: Any, origin: str) -> None:
        self.problems: list[str] = []
        page.on(
            "console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}")
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on(
            "request",
            lambda r: (
                r.url.startswith(origin + "/")
                or r.url.startswith("data:")
                or self.problems.append(f"left the origin: {r.url}")
            ),
        )
        page.on(
            "response",
            lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"),
        )


def _sign_in(page: Any, base: str, api_key: str) -> None:
    page.goto(f"{base}/console/drift")
    assert "/console/login" in page.url
    page.get_by_test_id("api-key").fill(api_key)
    page.get_by_test_id("sign-in").click()
    page.wait_for_url(f"{base}/console/drift")


def _read_pages(page: Any, base: str, seeded: dict[str, Any]) -> None:
    for path, marker in (
        ("/console", "drift-count-breaking"),
        ("/console/drift", "drift-table"),
        (f"/console/agents/{seeded['agent_id']}", "agent-bindings"),
        ("/console/patterns", "pattern-table"),
        ("/console/schedule", "run-form"),
        ("/console/notifications", "outbox-table"),
    ):
        page.goto(base + path)
        assert page.get_by_test_id(marker).count() >= 1, path
    page.goto(base + "/console")
    assert page.get_by_test_id("drift-count-breaking").inner_text() == "3"
    assert page.get_by_test_id("schedule-status-daily").inner_text() in {
        "up",
        "late",
        "down",
        "new",
    }


def _change_status(page: Any, base: str, pattern_id: uuid.UUID) -> None:
    page.goto(f"{base}/console/patterns/{pattern_id}")
    page.get_by_test_id("status-select").select_option("diagnosed")
    page.get_by_test_id("status-submit").click()
    page.wait_for_url(f"{base}/console/patterns/{pattern_id}?done=status")
    assert page.get_by_test_id("pattern-status").inner_text() == "diagnosed"


def _run_now(page: Any, base: str) -> None:
    page.goto(f"{base}/console/schedule")
    assert page.get_by_test_id("run-dry-run").is_checked()
    page.get_by_test_id("run-now").click()
    page.get_by_test_id("run-result").wait_for()
    assert page.get_by_test_id("run-signals").locator("tbody tr").count() == 6


def _replay(page: Any, base: str) -> None:
    page.goto(f"{base}/console/notifications")
    page.get_by_test_id("replay").click()
    page.wait_for_url(f"{base}/console/notifications?replayed=1")
    assert "Replayed 1" in page.get_by_test_id("flash").inner_text()


def test_the_console_in_chromium(
    chromium: Any, server: LiveServer, app: Any, admin: Any, seeded: dict[str, Any]
) -> None:
    for n, (width, height) in enumerate(VIEWPORTS):
        make_dead(app.state.engine, app.state.settings, admin.org_id, now=app.state.clock.now())
        context = chromium.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        watch = Watch(page, server.url)
        _sign_in(page, server.url, admin.api_key)
        _read_pages(page, server.url, seeded)
        if width == 1280:
            page.goto(server.url + "/console")
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        _change_status(page, server.url, seeded["patterns"][n])
        _run_now(page, server.url)
        _replay(page, server.url)
        context.close()
        assert watch.problems == [], (width, watch.problems)
