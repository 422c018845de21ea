"""Signing through the outbox against a real local receiver.

docs/reference/notifications.md#signing to
docs/reference/notifications.md#outbox

Signing, success, retry, timeout, 410, 429, exhaustion.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import update
from standardwebhooks.webhooks import WebhookVerificationError

from driftwarden.notifications import flows, outbox
from driftwarden.notifications.models import NotificationEndpoint, NotificationOutbox
from driftwarden.settings import Settings
from tests.notifications.conftest import SECRET, fast_receiver
from tests.notifications.helpers import enqueue, row, verified


def _deliver(session_factory, settings, clock, ids):  # type: ignore[no-untyped-def]
    return flows.deliver_now(session_factory, outbox_ids=ids, settings=settings, clock=clock)


def test_success_is_signed_over_the_exact_bytes(
    session_factory, settings, clock, admin, receiver
) -> None:
    [outbox_id] = enqueue(
        session_factory,
        settings,
        clock,
        admin.org_id,
        "contract_drift.patterns_promoted",
        {"org_id": admin.org_id, "created_pattern_count": 2, "when": clock.now()},
    )
    [result] = _deliver(session_factory, settings, clock, [outbox_id])
    assert (
        result.sent
        and result.status_code == 200
        and result.attempt_count == 1
        and result.destination == "env"
    )
    [got] = receiver.received
    body = verified(got, SECRET)
    assert (
        body["type"] == "contract_drift.patterns_promoted"
        and body["data"]["created_pattern_count"] == 2
    )
    assert body["data"]["org_id"] == str(admin.org_id) and body["timestamp"].endswith("Z")
    stored = row(session_factory, outbox_id)
    assert got.body == stored.body and got.headers["webhook-id"] == stored.message_id
    assert stored.status == "sent" and stored.sent_at is not None and stored.request_id == "req-1"
    assert got.headers["content-type"] == "application/json"
    tampered = got.body.replace(b'"created_pattern_count":2', b'"created_pattern_count":3')
    with pytest.raises(WebhookVerificationError):
        verified(type(got)(got.path, got.headers, tampered), SECRET)


def test_500_then_success_keeps_the_message_id(
    session_factory, settings, clock, admin, receiver
) -> None:
    receiver.responses.append((500, {}, 0.0))
    [outbox_id] = enqueue(session_factory, settings, clock, admin.org_id)
    [first] = _deliver(session_factory, settings, clock, [outbox_id])
    assert not first.sent and first.status == "pending" and first.status_code == 500
    assert first.error.startswith("HTTP_500")
    pending = row(session_factory, outbox_id)
    delay = (pending.next_attempt_at - clock.now()).total_seconds()
    assert 0.9 <= delay <= 1.1  # first delay of "1,2,3" with ±10 % jitter
    assert (
        flows.drain(session_factory, settings=settings, clock=clock, limit=10) == []
    )  # not due yet
    clock.advance(seconds=1.2)
    [second] = flows.drain(session_factory, settings=settings, clock=clock, limit=10)
    assert second.sent and second.attempt_count == 2
    first_got, second_got = receiver.received
    assert first_got.headers["webhook-id"] == second_got.headers["webhook-id"]
    assert first_got.body == second_got.body
    verified(first_got, SECRET), verified(second_got, SECRET)


def test_timeout_is_retried(session_factory, settings, clock, admin, receiver) -> None:
    receiver.responses.append((200, {}, 1.5))  # slower than the 1 s timeout
    [outbox_id] = enqueue(session_factory, settings, clock, admin.org_id)
    [result] = _deliver(session_factory, settings, clock, [outbox_id])
    assert not result.sent and result.status_code is None and result.error.startswith("TIMEOUT")
    assert row(session_factory, outbox_id).status == "pending"
    verified(receiver.received[0], SECRET)  # it did arrive, signed; only the answer came too late


def test_connection_refused_and_redirect_are_failures(
    session_factory, database_url, clock, admin
) -> None:
    refused = Settings(
        DATABASE_URL=database_url,
        NOTIFY_WEBHOOK_URL="http://127.0.0.1:9/hook",
        NOTIFY_RETRY_SCHEDULE="1",
    )
    [outbox_id] = enqueue(session_factory, refused, clock, admin.org_id)
    [result] = _deliver(session_factory, refused, clock, [outbox_id])
    assert result.error.startswith("CONNECTION_ERROR") and result.status == "pending"


def test_redirect_is_not_followed(session_factory, settings, clock, admin, receiver) -> None:
    receiver.responses.append((302, {"Location": "http://127.0.0.1:9/elsewhere"}, 0.0))
    [outbox_id] = enqueue(session_factory, settings, clock, admin.org_id)
    [result] = _deliver(session_factory, settings, clock, [outbox_id])
    assert not result.sent and result.status_code == 302 and len(receiver.received) == 1
    verified(receiver.received[0], SECRET)


def test_429_retry_after_is_honoured_when_longer(
    session_factory, settings, clock, admin, receiver
) -> None:
    receiver.responses.append((429, {"Retry-After": "120"}, 0.0))
    [outbox_id] = enqueue(session_factory, settings, clock, admin.org_id)
    [result] = _deliver(session_factory, settings, clock, [outbox_id])
    assert result.status_code == 429 and result.status == "pending"
    assert (
        row(session_factory, outbox_id).next_attempt_at - clock.now()
    ).total_seconds() == pytest.approx(120)
    clock.advance(seconds=60)
    assert flows.drain(session_factory, settings=settings, clock=clock, limit=10) == []
    clock.advance(seconds=61)
    [retried] = flows.drain(session_factory, settings=settings, clock=clock, limit=10)
    assert retried.sent
    for got in receiver.received:
        verified(got, SECRET)


def test_410_kills_the_message_and_disables_the_endpoint(
    client, session_factory, settings, clock, admin, receiver
) -> None:
    with fast_receiver(default=(410, {}, 0.0)) as gone:
        created = client.post(
            "/api/v1/system/notifications/endpoints",
            headers=admin.headers,
            json={"url": gone.url, "event_types": ["contract_drift.trigger_anomaly"]},
        ).json()["data"]
        ids = enqueue(
            session_factory, settings, clock, admin.org_id, "contract_drift.trigger_anomaly"
        )
        env_result, endpoint_result = _deliver(session_factory, settings, clock, ids)
        verified(gone.received[0], created["secret"])
    assert env_result.sent and env_result.destination == "env"
    assert endpoint_result.status == "dead" and endpoint_result.status_code == 410
    assert endpoint_result.attempt_count == 1 and endpoint_result.error.startswith("GONE")
    with session_factory() as session:
        endpoint = session.get(NotificationEndpoint, endpoint_result.endpoint_id)
        assert endpoint is not None and not endpoint.enabled and "410" in endpoint.disabled_reason
    assert (
        len(
            enqueue(
                session_factory, settings, clock, admin.org_id, "contract_drift.trigger_anomaly"
            )
        )
        == 1
    )


def test_exhaustion_goes_dead(session_factory, settings, clock, admin, receiver) -> None:
    receiver.default = (503, {}, 0.0)
    [outbox_id] = enqueue(session_factory, settings, clock, admin.org_id)
    assert row(session_factory, outbox_id).max_attempts == 4  # "1,2,3" → 4 attempts
    statuses = [_deliver(session_factory, settings, clock, [outbox_id])[0].status]
    for _ in range(3):
        clock.advance(seconds=4)
        statuses += [
            r.status for r in flows.drain(session_factory, settings=settings, clock=clock, limit=5)
        ]
    assert statuses == ["pending", "pending", "pending", "dead"]
    dead = row(session_factory, outbox_id)
    assert (
        dead.attempt_count == 4 and dead.dead_at is not None and dead.last_error_code == "HTTP_503"
    )
    assert (
        len(receiver.received) == 4
        and len({r.headers["webhook-id"] for r in receiver.received}) == 1
    )
    for got in receiver.received:
        verified(got, SECRET)


def test_destinations_filters_and_formats(
    session_factory, database_url, clock, admin, receiver
) -> None:
    filtered = Settings(
        DATABASE_URL=database_url,
        NOTIFY_WEBHOOK_URL=receiver.url,
        NOTIFY_WEBHOOK_FORMAT="slack",
        NOTIFY_WEBHOOK_EVENTS="contract_drift.trigger_anomaly",
    )
    assert enqueue(session_factory, filtered, clock, admin.org_id, "webhook.test") == []
    [outbox_id] = enqueue(
        session_factory,
        filtered,
        clock,
        admin.org_id,
        "contract_drift.trigger_anomaly",
        {"org_id": admin.org_id, "schedule_name": "daily", "reasons": ["execution_rate_low"]},
    )
    [result] = _deliver(session_factory, filtered, clock, [outbox_id])
    assert (
        result.sent and "webhook-signature" not in receiver.received[0].headers
    )  # no secret: unsigned
    message = json.loads(receiver.received[0].body)
    assert "execution_rate_low" in message["text"]
    assert any("What to do next" in b.get("text", {}).get("text", "") for b in message["blocks"])
    assert enqueue(session_factory, Settings(DATABASE_URL=database_url), clock, admin.org_id) == []
    with pytest.raises(ValueError, match="unknown notification event type"):
        enqueue(session_factory, filtered, clock, admin.org_id, "contract_drift.trigger_anomally")


def test_deliver_now_reports_rows_another_drainer_holds(
    session_factory, settings, clock, admin, receiver
) -> None:
    [outbox_id] = enqueue(session_factory, settings, clock, admin.org_id)
    with session_factory() as session:
        assert len(outbox.claim(session, now=clock.now(), limit=5, lease_seconds=60)) == 1
        session.commit()
    [result] = _deliver(session_factory, settings, clock, [outbox_id])
    assert not result.sent and result.status == "sending" and "IN_PROGRESS" in result.error
    assert receiver.received == []
    clock.advance(seconds=61)
    [redelivered] = flows.drain(session_factory, settings=settings, clock=clock, limit=5)
    assert redelivered.sent and redelivered.attempt_count == 2


class _SlowBodyHandler(BaseHTTPRequestHandler):
    """Answers 200 at once, then trickles a body the client never needs.

    Like a busy proxy or a chatty receiver.
    """

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.hits += 1  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.write(b"accepted")
        self.wfile.flush()
        time.sleep(1.0)

    def log_message(self, *args: object) -> None:
        return


def test_a_2xx_with_a_slow_body_is_sent_not_timed_out(
    session_factory, database_url, clock, admin
) -> None:
    server = type("Server", (ThreadingHTTPServer,), {"daemon_threads": True, "hits": 0})(
        ("127.0.0.1", 0), _SlowBodyHandler
    )
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
    try:
        slow = Settings(
            DATABASE_URL=database_url,
            NOTIFY_WEBHOOK_URL=f"http://127.0.0.1:{server.server_port}/h",
            NOTIFY_RETRY_SCHEDULE="1",
            NOTIFY_WEBHOOK_TIMEOUT_SECONDS=0.3,
        )
        [outbox_id] = enqueue(session_factory, slow, clock, admin.org_id)
        started = time.monotonic()
        [result] = _deliver(session_factory, slow, clock, [outbox_id])
        took = time.monotonic() - started
    finally:
        server.shutdown()
        server.server_close()
    assert result.sent and result.status_code == 200 and result.error is None, result
    assert row(session_factory, outbox_id).status == "sent" and server.hits == 1
    assert took < 0.95  # the attempt ends by its deadline, not when the receiver stops talking


def test_a_lapsed_lease_on_the_last_attempt_is_dead_not_an_extra_attempt(
    session_factory, settings, clock, admin, receiver
) -> None:
    [last, earlier] = enqueue(session_factory, settings, clock, admin.org_id) + enqueue(
        session_factory, settings, clock, admin.org_id
    )
    with session_factory() as session:
        session.execute(
            update(NotificationOutbox).where(NotificationOutbox.id == last).values(attempt_count=3)
        )
        claimed = outbox.claim(
            session, now=clock.now(), limit=5, lease_seconds=60
        )  # attempts 4 of 4 and 1 of 4
        session.commit()
    assert sorted(r.attempt_count for r in claimed) == [1, 4]
    clock.advance(seconds=61)  # the drainer holding both died
    [again] = flows.drain(session_factory, settings=settings, clock=clock, limit=5)
    assert again.outbox_id == earlier and again.sent and again.attempt_count == 2
    dead = row(session_factory, last)
    assert (dead.status, dead.attempt_count, dead.last_error_code) == ("dead", 4, "LEASE_EXPIRED")
    assert dead.dead_at == clock.now() and len(receiver.received) == 1


def test_one_statement_claim_leases_exactly_its_limit(
    session_factory, settings, clock, admin, receiver
) -> None:
    """On Postgres an inlined `IN (SELECT … SKIP LOCKED LIMIT n)` can be rescanned and take more."""
    for _ in range(5):
        enqueue(session_factory, settings, clock, admin.org_id)
    with session_factory() as session:
        first = outbox.claim(session, now=clock.now(), limit=2, lease_seconds=60)
        second = outbox.claim(session, now=clock.now(), limit=2, lease_seconds=60)
        session.commit()
    assert len(first) == len(second) == 2
    assert len({r.id for r in first + second}) == 4 and {r.attempt_count for r in first} == {1}
    statuses = [row(session_factory, r.id).status for r in first + second]
    assert statuses == ["sending"] * 4
