"""GET /metrics: who may scrape it, and HTTP requests labelled by route template, not by path."""

from __future__ import annotations

import uuid

import httpx

from driftwarden.metrics import events
from driftwarden.metrics.server import start_metrics_server
from tests.metrics.helpers import TOKEN, parse, scrape, series, value
from tests.support import free_port, make_tenant

REQUESTS = "driftwarden_http_requests_total"


def routes(samples) -> set[str]:  # type: ignore[no-untyped-def]
    return {dict(labels)["route"] for labels in series(samples, REQUESTS)}


def count(samples, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return value(samples, REQUESTS, **labels) or 0.0


def test_401_without_a_token_or_admin_key(client, engine, admin) -> None:
    member = make_tenant(engine, role="member", org_id=admin.org_id)
    for headers in (
        {},
        {"Authorization": "Bearer nope-not-a-key"},
        {"Authorization": f"Basic {TOKEN}"},
        member.headers,
        {"Authorization": f"Bearer {TOKEN}x"},
    ):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert not response.text.startswith("{")  # not the envelope
    for headers in ({"Authorization": f"Bearer {TOKEN}"}, admin.headers):
        response = client.get("/metrics", headers=headers)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "driftwarden_build_info" in parse(response.text).__repr__()


def test_not_under_api_and_not_in_the_openapi_document(client, admin) -> None:  # type: ignore[no-untyped-def]
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]
    assert client.get("/api/v1/metrics", headers=admin.headers).status_code == 404
    # Under /api the token is not an API key: refused before any route is looked up.
    assert (
        client.get("/api/v1/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
        == 401
    )


def test_one_route_label_however_many_ids(client, admin) -> None:  # type: ignore[no-untyped-def]
    before = scrape(client)
    ids = [uuid.uuid4() for _ in range(25)]
    for agent_id in ids:
        assert client.get(f"/api/v1/agents/{agent_id}", headers=admin.headers).status_code == 404
        assert client.get(f"/api/agents/{agent_id}", headers=admin.headers).status_code == 404
    after = scrape(client)
    template, legacy = "/api/v1/agents/{agent_id}", "/api/agents/{agent_id}"
    assert (
        count(after, method="GET", route=template, status="404")
        - count(before, method="GET", route=template, status="404")
        == 25
    )
    assert (
        count(after, method="GET", route=legacy, status="404")
        - count(before, method="GET", route=legacy, status="404")
        == 25
    )
    assert not any(str(agent_id) in route for route in routes(after) for agent_id in ids)
    histogram = value(
        after, "driftwarden_http_request_duration_seconds_count", method="GET", route=template
    )
    assert histogram is not None and histogram >= 25


def test_a_replay_gets_the_label_of_the_request_it_replays(client, admin) -> None:
    headers = {**admin.headers, "Idempotency-Key": uuid.uuid4().hex}
    before = scrape(client)
    first = client.post("/api/v1/agents", headers=headers, json={"name": "replayed"})
    second = client.post("/api/v1/agents", headers=headers, json={"name": "replayed"})
    assert second.headers.get("idempotent-replayed") == "true"
    after = scrape(client)
    status = str(first.status_code)
    assert (
        count(after, method="POST", route="/api/v1/agents", status=status)
        - count(before, method="POST", route="/api/v1/agents", status=status)
        == 2
    )


def test_unknown_paths_share_one_label(client) -> None:  # type: ignore[no-untyped-def]
    before = scrape(client)
    for n in range(5):
        assert client.get(f"/no/such/{uuid.uuid4()}/{n}").status_code == 404
    after = scrape(client)
    label = events.UNMATCHED_ROUTE
    assert (
        count(after, method="GET", route=label, status="404")
        - count(before, method="GET", route=label, status="404")
        == 5
    )


def test_event_counters_after_a_schedule_run(client, admin) -> None:  # type: ignore[no-untyped-def]
    before = scrape(client)
    client.post(
        "/api/v1/system/contracts/drift-policy", headers=admin.headers, json={"enabled": True}
    )
    response = client.post(
        "/api/v1/system/contracts/drift/schedule-run",
        headers={**admin.headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"org_id": str(admin.org_id)},
    )
    data = response.json()["data"]
    after = scrape(client)
    trigger = data["trigger"]["outcome"]
    notify = data["notify"]["outcome"]
    name_t, name_n = "driftwarden_trigger_runs_total", "driftwarden_notify_events_total"
    assert (value(after, name_t, outcome=trigger) or 0) - (
        value(before, name_t, outcome=trigger) or 0
    ) == 1
    assert (value(after, name_n, outcome=notify) or 0) - (
        value(before, name_n, outcome=notify) or 0
    ) == 1
    assert not [name for (name, _) in after if name.endswith("_created")]


def test_the_worker_serves_the_same_metrics_on_its_own_port(
    session_factory, settings, clock, admin
) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    server = start_metrics_server(
        port, session_factory=session_factory, settings=settings, clock=clock, host="127.0.0.1"
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(url, timeout=5).status_code == 401
        response = httpx.get(url, headers=admin.headers, timeout=5)
        assert response.status_code == 200
        samples = parse(response.text)
        assert value(samples, "driftwarden_outbox_messages", status="pending") == 0
        assert value(samples, "driftwarden_bindings", org_id=str(admin.org_id), drift="none") == 0
        assert (
            httpx.get(
                f"http://127.0.0.1:{port}/other", headers=admin.headers, timeout=5
            ).status_code
            == 404
        )
    finally:
        server.shutdown()
        server.server_close()
