"""The URL policy at delivery: on the address actually dialled; Host and TLS stay on the name.

Every receiver here is a real local server on 127.0.0.1 / ::1; "public" addresses are only ever
handed to the policy by a test resolver and never connected to.
"""

from __future__ import annotations

import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpcore
import pytest
import trustme
from sqlalchemy.orm import sessionmaker

from driftwarden.clock import Clock
from driftwarden.notifications import delivery, flows, outbox, transport, urlpolicy
from driftwarden.notifications import endpoints as endpoints_service
from driftwarden.notifications.schemas import EndpointCreate
from driftwarden.settings import Settings
from tests.notifications.conftest import fast_receiver
from tests.notifications.helpers import row
from tests.support import WebhookReceiver

PUBLIC = "93.184.215.14"  # handed to the policy only; no test connects to it


class Resolver:
    """Names to addresses without DNS, re-pointable mid-test (a rebinding DNS), counting asks."""

    def __init__(self, **table: list[str]) -> None:
        self.table = {name.replace("_", "."): addresses for name, addresses in table.items()}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return self.table[host]


@pytest.fixture
def strict(settings: Settings) -> Settings:
    """The default: per-org endpoints may not reach loopback or private networks."""
    return settings.model_copy(update={"notify_allow_private_networks": False})


def make_endpoint(
    session_factory: sessionmaker,
    org_id: uuid.UUID,
    url: str,
    clock: Clock,
    resolve: urlpolicy.Resolver,
) -> uuid.UUID:
    """Created through the service, so it passed the create-time check with `resolve`."""
    with session_factory() as session:
        endpoint = endpoints_service.create_endpoint(
            session,
            org_id=org_id,
            body=EndpointCreate(url=url),
            now=clock.now(),
            allow_private=False,
            resolve=resolve,
        )
        session.commit()
        return endpoint.id


def send_test(
    session_factory: sessionmaker,
    settings: Settings,
    clock: Clock,
    org_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    resolve: urlpolicy.Resolver,
) -> delivery.DeliveryResult:
    """Queue a webhook.test for one endpoint; attempt it once with a client from make_client."""
    with session_factory() as session:
        ids = [
            r.id
            for r in outbox.enqueue(
                session,
                org_id=org_id,
                event_type="webhook.test",
                data={"n": 1},
                now=clock.now(),
                settings=settings,
                endpoint_id=endpoint_id,
            )
        ]
        session.commit()
    client = delivery.make_client(settings, resolve=resolve)
    try:
        [result] = flows.run_batch(
            session_factory,
            settings=settings,
            clock=clock,
            client=client,
            claim=lambda s, now: outbox.claim(
                s, now=now, limit=1, lease_seconds=60, outbox_ids=ids
            ),
        )
    finally:
        client.close()
    return result


def test_a_name_rebound_to_loopback_after_create_is_refused_with_no_connection(
    session_factory, strict, clock, admin, receiver
) -> None:
    dns = Resolver(hooks_rebind_test=[PUBLIC])
    port = receiver.httpd.server_address[1]
    endpoint_id = make_endpoint(
        session_factory, admin.org_id, f"http://hooks.rebind.test:{port}/hook", clock, dns
    )
    dns.table["hooks.rebind.test"] = ["127.0.0.1"]  # the attacker's DNS answers differently now
    result = send_test(session_factory, strict, clock, admin.org_id, endpoint_id, dns)
    assert (result.sent, result.status, result.attempt_count) == (False, "dead", 1)
    assert result.error.startswith("URL_FORBIDDEN")
    assert receiver.received == []  # the receiver on 127.0.0.1 was never reached
    stored = row(session_factory, result.outbox_id)
    assert (stored.status, stored.last_error_code) == ("dead", "URL_FORBIDDEN")
    for leaked in ("127.0.0.1", str(port)):
        assert leaked not in stored.last_error
    # asked once at create and once to connect: the address checked is the address dialled
    assert dns.asked == ["hooks.rebind.test", "hooks.rebind.test"]


def test_with_private_networks_allowed_the_checked_address_is_dialled_and_host_kept(
    session_factory, settings, clock, admin, receiver
) -> None:
    dns = Resolver(hooks_rebind_test=[PUBLIC])
    port = receiver.httpd.server_address[1]
    endpoint_id = make_endpoint(
        session_factory, admin.org_id, f"http://hooks.rebind.test:{port}/hook", clock, dns
    )
    dns.table["hooks.rebind.test"] = ["127.0.0.1"]
    result = send_test(session_factory, settings, clock, admin.org_id, endpoint_id, dns)
    assert result.sent and result.status_code == 200, result
    [got] = receiver.received
    assert got.headers["host"] == f"hooks.rebind.test:{port}" and got.path == "/hook"


def test_link_local_stays_refused_with_private_networks_allowed(
    session_factory, settings, clock, admin
) -> None:
    dns = Resolver(metadata_google_internal=[PUBLIC])
    endpoint_id = make_endpoint(
        session_factory, admin.org_id, "http://metadata.google.internal/x", clock, dns
    )
    for answer in (
        ["169.254.169.254"],
        ["::ffff:169.254.169.254"],
        ["fe80::1"],
        [PUBLIC, "169.254.169.254"],
    ):
        dns.table["metadata.google.internal"] = answer
        result = send_test(session_factory, settings, clock, admin.org_id, endpoint_id, dns)
        assert result.status == "dead" and result.error.startswith("URL_FORBIDDEN"), answer


def test_the_operators_own_url_is_trusted_but_an_endpoint_at_the_same_place_is_not(
    session_factory, strict, clock, admin, receiver
) -> None:
    dns = Resolver(localhost=[PUBLIC])
    endpoint_id = make_endpoint(
        session_factory, admin.org_id, receiver.url.replace("127.0.0.1", "localhost"), clock, dns
    )
    with session_factory() as session:
        ids = [
            r.id
            for r in outbox.enqueue(
                session,
                org_id=admin.org_id,
                event_type="webhook.test",
                data={"n": 1},
                now=clock.now(),
                settings=strict,
            )
        ]
        session.commit()
    results = flows.deliver_now(session_factory, outbox_ids=ids, settings=strict, clock=clock)
    by_destination = {r.destination: r for r in results}
    assert by_destination["env"].sent  # NOTIFY_WEBHOOK_URL is the receiver on 127.0.0.1
    assert by_destination["endpoint"].endpoint_id == endpoint_id
    # dialled through the system resolver, which says 127.0.0.1
    assert by_destination["endpoint"].error.startswith("URL_FORBIDDEN")
    assert len(receiver.received) == 1


class RecordingBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self.dialled: list[str] = []

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: transport.SocketOptions | None = None,
    ) -> httpcore.NetworkStream:
        self.dialled.append(host)
        return httpcore.SyncBackend().connect_tcp(
            host, port, timeout, local_address, socket_options
        )  # type: ignore[arg-type]


def test_a_forbidden_address_is_never_dialled_and_a_refused_one_falls_through() -> None:
    inner = RecordingBackend()
    backend = transport.CheckedBackend(
        allow_private=True, resolve=Resolver(split_test=["10.0.0.5", "169.254.1.1"]), inner=inner
    )
    with pytest.raises(urlpolicy.ForbiddenAddress):
        backend.connect_tcp("split.test", 80, timeout=1)
    assert inner.dialled == []
    with fast_receiver() as hook:  # listens on 127.0.0.1 only: ::1 refuses, 127.0.0.1 answers
        port = hook.httpd.server_address[1]
        both = transport.CheckedBackend(
            allow_private=True, resolve=Resolver(dual_test=["::1", "127.0.0.1"]), inner=inner
        )
        both.connect_tcp("dual.test", port, timeout=1).close()
    assert inner.dialled == ["::1", "127.0.0.1"]


@pytest.fixture
def not_http() -> Iterator[int]:
    """A TCP port that accepts and hangs up at once, like a database that does not speak HTTP."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()


def test_a_closed_port_and_a_non_http_service_answer_alike(
    session_factory, settings, clock, admin, not_http
) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    answers = []
    for port in (closed_port, not_http):
        dns = Resolver(inside_test=[PUBLIC])
        endpoint_id = make_endpoint(
            session_factory, admin.org_id, f"http://inside.test:{port}/", clock, dns
        )
        dns.table["inside.test"] = ["127.0.0.1"]
        answers.append(
            send_test(session_factory, settings, clock, admin.org_id, endpoint_id, dns).error
        )
    assert answers == ["CONNECTION_ERROR: connection failed"] * 2


def tls_receiver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, seen: list[str]
) -> WebhookReceiver:
    """A receiver on 127.0.0.1 with a certificate for `name` only, from a CA the client trusts."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv(
        "SSL_CERT_FILE", str(tmp_path / "ca.pem")
    )  # read when make_client builds its context
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)

    def record_sni(_sock: ssl.SSLSocket, server_name: str | None, _ctx: ssl.SSLContext) -> None:
        seen.append(server_name or "")

    context.sni_callback = record_sni  # type: ignore[assignment]
    hook = fast_receiver()
    hook.httpd.socket = context.wrap_socket(hook.httpd.socket, server_side=True)
    return hook


def test_tls_checks_the_urls_name_on_the_pinned_address(
    session_factory, settings, clock, admin, tmp_path, monkeypatch
) -> None:
    seen: list[str] = []
    with tls_receiver(tmp_path, monkeypatch, "hooks.pinned.test", seen) as hook:
        port = hook.httpd.server_address[1]
        dns = Resolver(hooks_pinned_test=[PUBLIC], other_pinned_test=[PUBLIC])
        good = make_endpoint(
            session_factory, admin.org_id, f"https://hooks.pinned.test:{port}/hook", clock, dns
        )
        wrong = make_endpoint(
            session_factory, admin.org_id, f"https://other.pinned.test:{port}/hook", clock, dns
        )
        dns.table = {"hooks.pinned.test": ["127.0.0.1"], "other.pinned.test": ["127.0.0.1"]}
        sent = send_test(session_factory, settings, clock, admin.org_id, good, dns)
        refused = send_test(session_factory, settings, clock, admin.org_id, wrong, dns)
    assert sent.sent, sent
    assert hook.received[0].headers["host"] == f"hooks.pinned.test:{port}"
    assert seen == ["hooks.pinned.test", "other.pinned.test"]  # SNI is the name, never 127.0.0.1
    assert refused.error == "CONNECTION_ERROR: connection failed" and len(hook.received) == 1
