"""Console fixtures: drifted bindings, a signed-in browser-like client, CSRF tokens from pages."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from driftwarden.db.engine import make_session_factory
from driftwarden.notifications import outbox
from driftwarden.notifications.models import NotificationOutbox
from driftwarden.patterns.models import IssuePattern
from driftwarden.settings import Settings
from tests.support import seed_agent_bindings

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_settings(database_url: str) -> Settings:
    # A destination that is never contacted: the tests only queue messages.
    return Settings(
        DATABASE_URL=database_url,
        NOTIFY_RETRY_SCHEDULE="1,2,3",
        NOTIFY_WEBHOOK_URL="http://127.0.0.1:9/hook",
    )


@pytest.fixture
def settings(database_url: str) -> Settings:
    return console_settings(database_url)


def seed_agent(
    engine: Engine,
    org_id: uuid.UUID,
    *,
    name: str = "support-bot",
    plan: tuple[tuple[str, str], ...] = (
        ("2.0.0", "1.4.2"),
        ("2.0.0", "1.4.2"),
        ("1.5.0", "1.4.2"),
        ("1.4.2", "1.4.2"),
    ),
) -> uuid.UUID:
    """An agent bound to one definition per (current, bound) pair: 2 breaking, 1 warning, 1 none."""
    prefix = f"g{uuid.uuid4().hex[:8]}"
    return seed_agent_bindings(engine, org_id, plan, name=name, key=lambda n: f"{prefix}-{n}")


def seed_pattern(
    engine: Engine,
    org_id: uuid.UUID,
    agent_id: uuid.UUID | None,
    *,
    status: str = "detected",
    title: str = "Contract drift (breaking)",
) -> uuid.UUID:
    now = datetime.now(UTC)
    with make_session_factory(engine)() as session:
        row = IssuePattern(
            org_id=org_id,
            agent_id=agent_id,
            title=title,
            primary_tag="contract_drift",
            related_tags=[],
            status=status,
            priority="high",
            owner=None,
            evidence={},
            dedupe_key=f"test:{uuid.uuid4()}",
            occurrence_count=1,
            first_seen_at=now,
            last_seen_at=now,
            status_history=[],
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.commit()
        return row.id


def make_dead(engine: Engine, settings: Settings, org_id: uuid.UUID, *, now: datetime) -> uuid.UUID:
    """A dead letter: queued to the server's webhook, then marked dead after its attempts."""
    with make_session_factory(engine)() as session:
        [row] = outbox.enqueue(
            session,
            org_id=org_id,
            event_type="webhook.test",
            data={"n": 1},
            now=now,
            settings=settings,
        )
        session.commit()
        session.execute(
            update(NotificationOutbox)
            .where(NotificationOutbox.id == row.id)
            .values(
                status="dead",
                attempt_count=4,
                last_error_code="HTTP_500",
                dead_at=now - timedelta(hours=2),
            )
        )
        session.commit()
        return row.id


@dataclass
class Browser:
    """A TestClient with its own cookie jar, signed in with one API key."""

    client: TestClient

    def get(self, path: str, **kw: Any):  # type: ignore[no-untyped-def]
        return self.client.get(path, follow_redirects=False, **kw)

    def csrf(self, path: str = "/console") -> str:
        page = self.get(path)
        assert page.status_code == 200, page.text
        match = CSRF.search(page.text)
        assert match, "no CSRF token on the page"
        return match.group(1)

    def post(
        self,
        path: str,
        data: dict[str, Any],
        *,
        token: str | None = None,
        origin: str | None = "http://testserver",
    ):  # type: ignore[no-untyped-def]
        headers = {"Origin": origin} if origin else {}
        body = dict(data) if token is None else {**data, "csrf_token": token}
        return self.client.post(path, data=body, headers=headers, follow_redirects=False)


def sign_in(app: Any, api_key: str) -> Browser:
    client = TestClient(app, raise_server_exceptions=False)
    response = client.post("/console/login", data={"api_key": api_key}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return Browser(client)


@pytest.fixture
def browser_for(app: Any):  # type: ignore[no-untyped-def]
    """Sign in any tenant: browser_for(tenant) -> Browser."""
    opened: list[Browser] = []

    def make(tenant: Any) -> Browser:
        opened.append(sign_in(app, tenant.api_key))
        return opened[-1]

    yield make
    for browser in opened:
        browser.client.close()
