"""Destinations and the outbox through HTTP.

docs/reference/notifications.md#destinations
docs/reference/notifications.md#outbox

Endpoints, rotation, test send, outbox, drain, dead letters, retry, replay.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import update

from driftwarden.notifications import endpoints as endpoints_service
from driftwarden.notifications import signing
from driftwarden.notifications.models import NotificationEndpoint, NotificationOutbox
from driftwarden.notifications.schemas import EndpointCreate
from tests.notifications.conftest import SECRET
from tests.notifications.helpers import enqueue, row, verified
from tests.support import ON_POSTGRES, make_tenant

BASE = "/api/v1/system/notifications"


def _endpoint(client, admin, url, **extra):  # type: ignore[no-untyped-def]
    response = client.post(f"{BASE}/endpoints", headers=admin.headers, json={"url": url, **extra})
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_endpoint_lifecycle_and_secret_hygiene(client, admin, receiver) -> None:
    created = _endpoint(client, admin, receiver.url, format="slack", event_types=["webhook.test"])
    secret = created["secret"]
    assert secret.startswith("whsec_") and "secret_prefix" not in created
    listed = client.get(f"{BASE}/endpoints", headers=admin.headers).json()["data"]
    assert listed["total_count"] == 1 and "secret" not in listed["items"][0]
    fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:12]
    assert listed["items"][0]["secret_fingerprint"] == fingerprint
    assert secret not in client.get(f"{BASE}/endpoints", headers=admin.headers).text
    patched = client.patch(
        f"{BASE}/endpoints/{created['id']}",
        headers=admin.headers,
        json={"enabled": False, "event_types": []},
    ).json()["data"]
    assert patched["enabled"] is False and patched["event_types"] == [] and "secret" not in patched
    refused = client.post(f"{BASE}/endpoints/{created['id']}/test", headers=admin.headers)
    assert (
        refused.status_code == 409
        and refused.json()["error"]["code"] == "NOTIFICATION_ENDPOINT_DISABLED"
    )
    bad = [
        client.post(f"{BASE}/endpoints", headers=admin.headers, json={"url": "ftp://x"}),
        client.post(
            f"{BASE}/endpoints", headers=admin.headers, json={"url": receiver.url, "format": "xml"}
        ),
        client.post(
            f"{BASE}/endpoints",
            headers=admin.headers,
            json={"url": receiver.url, "event_types": ["x"]},
        ),
        client.patch(
            f"{BASE}/endpoints/{created['id']}", headers=admin.headers, json={"url": None}
        ),
    ]
    assert [r.status_code for r in bad] == [422, 422, 422, 422]
    assert (
        client.delete(f"{BASE}/endpoints/{created['id']}", headers=admin.headers).status_code == 200
    )
    assert (
        client.delete(f"{BASE}/endpoints/{created['id']}", headers=admin.headers).status_code == 404
    )


def test_endpoints_are_org_isolated(client, engine, admin, receiver) -> None:
    other = make_tenant(engine, role="admin", name="Other")
    created = _endpoint(client, admin, receiver.url)
    for method, path in (
        ("patch", ""),
        ("delete", ""),
        ("post", "/test"),
        ("post", "/rotate-secret"),
    ):
        kwargs = {"json": {"enabled": False}} if method == "patch" else {}
        response = getattr(client, method)(
            f"{BASE}/endpoints/{created['id']}{path}", headers=other.headers, **kwargs
        )
        assert response.status_code == 404, (method, path)
    assert client.get(f"{BASE}/endpoints", headers=other.headers).json()["data"]["total_count"] == 0
    viewer = make_tenant(engine, role="member", org_id=admin.org_id)
    assert client.get(f"{BASE}/endpoints", headers=viewer.headers).status_code == 403


def test_test_send_and_rotation_overlap(client, admin, receiver, clock) -> None:
    created = _endpoint(client, admin, receiver.url, event_types=["contract_drift.trigger_anomaly"])
    sent = client.post(f"{BASE}/endpoints/{created['id']}/test", headers=admin.headers).json()[
        "data"
    ]
    assert sent["sent"] and sent["destination"] == "endpoint"
    # the env default (NOTIFY_WEBHOOK_URL) is not part of an endpoint's test
    [first] = receiver.received
    assert verified(first, created["secret"])["type"] == "webhook.test"
    rotated = client.post(
        f"{BASE}/endpoints/{created['id']}/rotate-secret", headers=admin.headers
    ).json()["data"]
    assert (
        rotated["secret"] != created["secret"] and rotated["previous_secret_expires_at"] is not None
    )
    client.post(f"{BASE}/endpoints/{created['id']}/test", headers=admin.headers)
    during = receiver.received[1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    (
        verified(during, created["secret"]),
        verified(during, rotated["secret"]),
    )  # both, by the package's verifier
    clock.advance(hours=24, seconds=1)
    client.post(f"{BASE}/endpoints/{created['id']}/test", headers=admin.headers)
    after = receiver.received[2]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    signing.verify(
        secret=rotated["secret"],
        headers=after.headers,
        body=after.body,
        tolerance_seconds=300,
        now=clock.now(),
    )
    try:
        signing.verify(
            secret=created["secret"],
            headers=after.headers,
            body=after.body,
            tolerance_seconds=300,
            now=clock.now(),
        )
        raise AssertionError("the old secret must stop signing after the overlap")
    except signing.WebhookVerificationError:
        pass


def test_outbox_list_drain_and_filters(
    client, engine, session_factory, settings, clock, admin, receiver
) -> None:
    other = make_tenant(engine, role="admin", name="Other")
    enqueue(session_factory, settings, clock, admin.org_id, "contract_drift.trigger_anomaly")
    enqueue(session_factory, settings, clock, admin.org_id, "webhook.test")
    enqueue(session_factory, settings, clock, other.org_id, "webhook.test")
    listed = client.get(
        f"{BASE}/outbox", headers=admin.headers, params={"status": "pending"}
    ).json()["data"]
    assert listed["total_count"] == 2 and {i["event_type"] for i in listed["items"]} == {
        "contract_drift.trigger_anomaly",
        "webhook.test",
    }
    assert (
        listed["items"][0]["url_host"].startswith("http://127.0.0.1:")
        and "url" not in listed["items"][0]
    )
    assert (
        client.get(
            f"{BASE}/outbox", headers=admin.headers, params={"org_id": str(other.org_id)}
        ).status_code
        == 403
    )
    drained = client.post(f"{BASE}/outbox/drain", headers=admin.headers, json={"limit": 1}).json()[
        "data"
    ]
    assert (drained["picked"], drained["sent"], drained["failed"], drained["dead"]) == (1, 1, 0, 0)
    drained = client.post(f"{BASE}/outbox/drain", headers=admin.headers).json()["data"]
    assert drained["picked"] == 1  # only this org's second message; the other org's stays
    by_type = client.get(
        f"{BASE}/outbox",
        headers=admin.headers,
        params={"status": "sent", "event_type": "webhook.test"},
    ).json()["data"]
    assert by_type["total_count"] == 1
    assert (
        client.post(f"{BASE}/outbox/drain", headers=admin.headers, json={"limit": 201}).status_code
        == 422
    )
    assert len(receiver.received) == 2


def _make_dead(
    session_factory, settings, clock, org_id, *, code: str, age: timedelta, event="webhook.test"
):  # type: ignore[no-untyped-def]
    [outbox_id] = enqueue(session_factory, settings, clock, org_id, event)
    with session_factory() as session:
        session.execute(
            update(NotificationOutbox)
            .where(NotificationOutbox.id == outbox_id)
            .values(status="dead", attempt_count=4, last_error_code=code, dead_at=clock.now() - age)
        )
        session.commit()
    return outbox_id


def test_dead_letter_summary_buckets_and_reasons(
    client, session_factory, settings, clock, admin
) -> None:
    empty = client.get(f"{BASE}/outbox/dead-letter-summary", headers=admin.headers).json()["data"]
    assert empty["total_dead"] == 0 and empty["oldest_dead_age_seconds"] is None
    for code, age in (
        ("HTTP_500", timedelta(minutes=5)),
        ("HTTP_500", timedelta(hours=2)),
        ("TIMEOUT", timedelta(days=2)),
        ("GONE", timedelta(days=8)),
        ("HTTP_500", timedelta(days=30)),
    ):
        _make_dead(session_factory, settings, clock, admin.org_id, code=code, age=age)
    summary = client.get(f"{BASE}/outbox/dead-letter-summary", headers=admin.headers).json()["data"]
    assert summary["total_dead"] == 5
    assert summary["oldest_dead_age_seconds"] == timedelta(days=30).total_seconds()
    assert summary["reason_groups"] == [
        {"reason": "HTTP_500", "count": 3},
        {"reason": "GONE", "count": 1},
        {"reason": "TIMEOUT", "count": 1},
    ]
    assert summary["age_buckets"] == [
        {"bucket": "lt_1h", "count": 1},
        {"bucket": "h_1_to_24", "count": 1},
        {"bucket": "d_1_to_7", "count": 1},
        {"bucket": "gte_7d", "count": 2},
    ]


def test_single_retry_resets_a_dead_row(
    client, session_factory, settings, clock, admin, receiver
) -> None:
    outbox_id = _make_dead(
        session_factory, settings, clock, admin.org_id, code="HTTP_500", age=timedelta(hours=1)
    )
    path = f"{BASE}/outbox/{outbox_id}/retry"
    assert (
        client.post(path, headers=admin.headers).json()["error"]["code"]
        == "IDEMPOTENCY_KEY_REQUIRED"
    )
    retried = client.post(path, headers={**admin.headers, "Idempotency-Key": "r1"}).json()["data"]
    assert (
        retried["status"] == "pending"
        and retried["attempt_count"] == 0
        and retried["dead_at"] is None
    )
    drained = client.post(f"{BASE}/outbox/drain", headers=admin.headers).json()["data"]
    assert drained["sent"] == 1 and row(session_factory, outbox_id).attempt_count == 1
    verified(receiver.received[0], SECRET)
    with session_factory() as session:
        session.execute(
            update(NotificationOutbox)
            .where(NotificationOutbox.id == outbox_id)
            .values(status="sending")
        )
        session.commit()
    busy = client.post(path, headers={**admin.headers, "Idempotency-Key": "r2"})
    assert (
        busy.status_code == 409
        and busy.json()["error"]["code"] == "NOTIFICATION_OUTBOX_IN_PROGRESS"
    )
    missing = client.post(
        f"{BASE}/outbox/{admin.api_key_id}/retry",
        headers={**admin.headers, "Idempotency-Key": "r3"},
    )
    assert missing.status_code == 404


def test_bulk_replay(client, engine, session_factory, settings, clock, admin, receiver) -> None:
    other = make_tenant(engine, role="admin", name="Other")
    ids = [
        _make_dead(
            session_factory, settings, clock, admin.org_id, code="HTTP_500", age=timedelta(hours=h)
        )
        for h in (3, 2, 1)
    ]
    anomaly = _make_dead(
        session_factory,
        settings,
        clock,
        admin.org_id,
        code="TIMEOUT",
        age=timedelta(hours=1),
        event="contract_drift.trigger_anomaly",
    )
    _make_dead(
        session_factory, settings, clock, other.org_id, code="HTTP_500", age=timedelta(hours=1)
    )
    path, key = f"{BASE}/outbox/dead-letter/replay", {"Idempotency-Key": "replay-1"}
    assert client.post(path, headers=admin.headers, json={}).status_code == 400
    dry = client.post(
        path,
        headers={**admin.headers, "Idempotency-Key": "dry"},
        json={"event_type": "webhook.test", "limit": 2, "dry_run": True},
    ).json()["data"]
    assert dry == {
        "selected_count": 2,
        "replayed_count": 0,
        "outbox_ids": [str(i) for i in ids[:2]],
        "dry_run": True,
    }
    assert row(session_factory, ids[0]).status == "dead"
    done = client.post(
        path, headers={**admin.headers, **key}, json={"event_type": "webhook.test"}
    ).json()["data"]
    assert (
        done["selected_count"] == 3
        and done["replayed_count"] == 3
        and set(done["outbox_ids"]) == set(map(str, ids))
    )
    again = client.post(path, headers={**admin.headers, **key}, json={"event_type": "webhook.test"})
    assert again.headers.get("idempotent-replayed") == "true" and again.json()["data"] == done
    assert row(session_factory, anomaly).status == "dead"
    assert client.post(f"{BASE}/outbox/drain", headers=admin.headers).json()["data"]["sent"] == 3
    left = client.get(f"{BASE}/outbox/dead-letter-summary", headers=admin.headers).json()["data"]
    assert left["total_dead"] == 1 and left["reason_groups"] == [{"reason": "TIMEOUT", "count": 1}]


def test_fixing_an_endpoint_url_redirects_its_waiting_messages(
    client, session_factory, settings, clock, admin, receiver
) -> None:
    created = _endpoint(
        client, admin, "http://127.0.0.1:9/wrong", event_types=["contract_drift.schedule_missed"]
    )
    failed = client.post(f"{BASE}/endpoints/{created['id']}/test", headers=admin.headers).json()[
        "data"
    ]
    assert failed["status"] == "pending" and failed["error"].startswith("CONNECTION_ERROR")
    client.patch(
        f"{BASE}/endpoints/{created['id']}", headers=admin.headers, json={"url": receiver.url}
    )
    retried = client.post(
        f"{BASE}/outbox/{failed['outbox_id']}/retry",
        headers={**admin.headers, "Idempotency-Key": "k"},
    )
    assert retried.json()["data"]["status"] == "pending"
    assert client.post(f"{BASE}/outbox/drain", headers=admin.headers).json()["data"]["sent"] == 1
    [got] = receiver.received
    assert (
        got.headers["webhook-id"] == failed["message_id"]
        and verified(got, created["secret"])["type"] == "webhook.test"
    )


def test_global_admin_acts_on_any_org_and_the_audit_row_names_it(
    client, admin, global_admin, receiver
) -> None:
    created = _endpoint(client, admin, receiver.url)
    assert (
        client.get(f"{BASE}/endpoints", headers=global_admin.headers).status_code == 422
    )  # must name the org
    listed = client.get(
        f"{BASE}/endpoints", headers=global_admin.headers, params={"org_id": str(admin.org_id)}
    )
    assert listed.json()["data"]["total_count"] == 1
    rotated = client.post(
        f"{BASE}/endpoints/{created['id']}/rotate-secret", headers=global_admin.headers
    )
    assert rotated.status_code == 200
    audit = client.get(
        "/api/v1/system/audit-logs",
        headers=global_admin.headers,
        params={"org_id": str(admin.org_id), "path": "rotate-secret"},
    ).json()["data"]
    assert audit["total_count"] == 1 and audit["items"][0]["api_key_id"] == str(
        global_admin.api_key_id
    )
    assert (
        rotated.json()["data"]["secret"]
        not in client.get("/api/v1/system/audit-logs", headers=global_admin.headers).text
    )


def test_url_credentials_stay_out_of_the_outbox_and_the_logs(
    client, admin, receiver, caplog
) -> None:
    with_password = (
        receiver.url.replace("http://", "http://ops:pa55-in-url@") + "?token=t0ken-in-query"
    )
    created = _endpoint(client, admin, with_password)
    with caplog.at_level("INFO", logger="driftwarden.notifications"):
        sent = client.post(f"{BASE}/endpoints/{created['id']}/test", headers=admin.headers).json()[
            "data"
        ]
    assert sent["sent"] and receiver.received[0].headers["authorization"].startswith("Basic ")
    listed = client.get(f"{BASE}/outbox", headers=admin.headers)
    assert listed.json()["data"]["items"][0]["url_host"] == receiver.url.removesuffix("/hook")
    attempt_lines = [
        r.getMessage() for r in caplog.records if '"webhook_attempt"' in r.getMessage()
    ]
    assert len(attempt_lines) == 1 and receiver.url.removesuffix("/hook") in attempt_lines[0]
    for leaked in ("pa55-in-url", "t0ken-in-query", "ops:"):
        assert leaked not in listed.text and leaked not in caplog.text


@pytest.mark.integration
@pytest.mark.skipif(
    not ON_POSTGRES, reason="needs PostgreSQL (RUN_DB_INTEGRATION=1): two rotations racing"
)
def test_concurrent_rotations_never_hand_out_a_secret_that_does_not_sign(
    client, session_factory, clock, admin, receiver
) -> None:
    created = _endpoint(client, admin, receiver.url)
    answers: list = []
    with session_factory() as first:
        endpoint = endpoints_service.get_endpoint_or_404(
            first, org_id=admin.org_id, endpoint_id=uuid.UUID(created["id"]), for_update=True
        )
        first_secret = endpoints_service.rotate_secret(
            first, endpoint=endpoint, now=clock.now()
        ).secret
        second = threading.Thread(
            target=lambda: answers.append(
                client.post(
                    f"{BASE}/endpoints/{created['id']}/rotate-secret", headers=admin.headers
                )
            )
        )
        second.start()
        time.sleep(0.5)  # the HTTP rotation is now waiting for the first one's row lock
        first.commit()
    second.join(timeout=10)
    second_secret = answers[0].json()["data"]["secret"]
    with session_factory() as session:
        stored = session.get(NotificationEndpoint, endpoint.id)
        assert stored.secret == second_secret
        assert (
            stored.previous_secret == first_secret
        )  # built on the first rotation, not on a stale read


def test_urls_the_client_cannot_send_to_are_refused_and_never_crash_a_send(
    client, session_factory, admin, receiver
) -> None:
    for bad in ("http://a\u0001b/hook", "http://127.0.0.1:99999/hook", "http:///hook", "https://"):
        response = client.post(f"{BASE}/endpoints", headers=admin.headers, json={"url": bad})
        assert (
            response.status_code == 422 and response.json()["error"]["code"] == "VALIDATION_ERROR"
        ), bad
        assert bad not in response.text
    created = _endpoint(client, admin, receiver.url)
    with session_factory() as session:  # stored before this validation existed
        session.execute(
            update(NotificationEndpoint)
            .where(NotificationEndpoint.id == uuid.UUID(created["id"]))
            .values(url="http://a\u0001b/hook")
        )
        session.commit()
    sent = client.post(f"{BASE}/endpoints/{created['id']}/test", headers=admin.headers)
    assert sent.status_code == 200, sent.text
    assert sent.json()["data"]["status"] == "pending" and sent.json()["data"]["error"].startswith(
        "INVALID_URL"
    )


@pytest.mark.parametrize(
    "bad",
    [
        "http://ex ample.com/hook",
        "http://%zz/hook",
        "http://a..b/hook",
        f"http://{'a' * 64}.example/hook",
        f"http://{'a.' * 127}example/hook",
        "http://127.0.0.1:0/hook",
    ],
)
def test_a_host_no_resolver_answers_is_refused_when_the_endpoint_is_made(
    client, admin, bad: str
) -> None:
    """They were taken, and failed at every delivery with a connection error."""
    response = client.post(f"{BASE}/endpoints", headers=admin.headers, json={"url": bad})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["loc"] == ["body", "url"]


def test_internal_names_and_idn_hosts_pass_the_url_schema() -> None:
    """An underscore (some internal names have one), a trailing dot, an IDN host: the resolver and
    the URL policy decide those, not the schema."""
    for url in ("http://my_service:8080/hook", "https://example.com./hook", "https://exämple.com/"):
        assert EndpointCreate(url=url).url == url


def test_a_slack_url_defaults_to_the_slack_format(client, admin) -> None:
    slack = _endpoint(client, admin, "https://hooks.slack.com/services/T000/B000/test-token-a")
    explicit = _endpoint(
        client, admin, "https://hooks.slack.com/services/T000/B000/test-token-b", format="json"
    )
    other = _endpoint(client, admin, "https://example.com/hook")
    assert (slack["format"], explicit["format"], other["format"]) == ("slack", "json", "json")
