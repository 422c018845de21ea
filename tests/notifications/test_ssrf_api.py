"""The URL policy through HTTP: create, update and /test refuse the inside, NOTIFY_URL_FORBIDDEN."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from driftwarden.api.app import create_app
from driftwarden.clock import Clock
from driftwarden.notifications import router, urlpolicy
from driftwarden.settings import Settings

BASE = "/api/v1/system/notifications"
PUBLIC = "93.184.215.14"  # handed to the policy only; no test connects to it
NAMES = {
    "metadata.google.internal": ["169.254.169.254"],
    "hooks.corp.test": ["127.0.0.1"],
    "ec2.metadata.test": ["fd00:ec2::254"],
    "hooks.public.test": [PUBLIC],
    "localhost": [PUBLIC],
}  # a rebinding DNS: public when checked, 127.0.0.1 when dialled


def resolve_names(host: str, port: int) -> list[str]:
    """The names above without DNS; numeric hosts go to the OS resolver (it reads them offline)."""
    return NAMES[host] if host in NAMES else urlpolicy.system_resolver(host, port)


# Every form the SSRF finding lists, plus the mapped and link-local IPv6 ones.
FINDING = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/latest",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://[::1]/",
    "http://127.0.0.1:5432/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://hooks.corp.test/hook",
    "http://[fe80::1]/",
]
NEVER_EVEN_WITH_PRIVATE = {
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fe80::1]/",
}


def client_for(
    settings: Settings, engine: Engine, clock: Clock, *, allow_private: bool
) -> Iterator[TestClient]:
    app = create_app(
        settings.model_copy(update={"notify_allow_private_networks": allow_private}),
        engine=engine,
        clock=clock,
    )
    app.dependency_overrides[router.get_resolver] = lambda: resolve_names
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def strict(settings: Settings, engine: Engine, clock: Clock) -> Iterator[TestClient]:
    yield from client_for(settings, engine, clock, allow_private=False)


@pytest.fixture
def lenient(settings: Settings, engine: Engine, clock: Clock) -> Iterator[TestClient]:
    yield from client_for(settings, engine, clock, allow_private=True)


def assert_forbidden(response: httpx.Response, url: str) -> None:
    assert response.status_code == 422, (url, response.text)
    assert response.json()["error"]["code"] == "NOTIFY_URL_FORBIDDEN", url
    host = urlpolicy.host_and_port(url)[0]
    for leaked in {host, *NAMES.get(host, []), "5432"}:  # neither the host, its address nor a port
        assert leaked not in response.text, (url, leaked)


def test_create_refuses_every_form_of_the_finding(strict, admin) -> None:
    for url in FINDING:  # one app for all: each is a separate request, each assertion names its URL
        assert_forbidden(
            strict.post(f"{BASE}/endpoints", headers=admin.headers, json={"url": url}), url
        )
    assert strict.get(f"{BASE}/endpoints", headers=admin.headers).json()["data"]["total_count"] == 0


def test_private_networks_allowed_still_never_link_local(lenient, admin) -> None:
    for url in FINDING:
        response = lenient.post(f"{BASE}/endpoints", headers=admin.headers, json={"url": url})
        if url in NEVER_EVEN_WITH_PRIVATE:
            assert_forbidden(response, url)
        else:
            assert response.status_code == 201, (url, response.text)
    listed = lenient.get(f"{BASE}/endpoints", headers=admin.headers).json()["data"]
    assert listed["total_count"] == len(FINDING) - len(NEVER_EVEN_WITH_PRIVATE)


def test_update_refuses_them_and_keeps_the_old_url(strict, admin) -> None:
    created = strict.post(
        f"{BASE}/endpoints", headers=admin.headers, json={"url": "https://hooks.public.test/hook"}
    ).json()["data"]
    for url in FINDING:
        assert_forbidden(
            strict.patch(
                f"{BASE}/endpoints/{created['id']}", headers=admin.headers, json={"url": url}
            ),
            url,
        )
    [listed] = strict.get(f"{BASE}/endpoints", headers=admin.headers).json()["data"]["items"]
    assert listed["url"] == "https://hooks.public.test/hook"
    renamed = strict.patch(
        f"{BASE}/endpoints/{created['id']}",
        headers=admin.headers,
        json={"description": "no URL change, no check"},
    )
    assert renamed.status_code == 200


def test_a_dotted_octal_host_is_refused_by_the_url_schema(strict, admin) -> None:
    response = strict.post(
        f"{BASE}/endpoints", headers=admin.headers, json={"url": "http://0177.0.0.1/"}
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_a_public_name_and_an_unresolvable_one_are_accepted(strict, admin) -> None:
    for url in ("https://hooks.public.test/hook", "https://not-yet-in-dns.invalid/hook"):
        response = strict.post(f"{BASE}/endpoints", headers=admin.headers, json={"url": url})
        assert response.status_code == 201, (url, response.text)


def test_test_send_to_a_name_now_pointing_inside_is_refused_without_a_connection(
    strict, admin, receiver
) -> None:
    """Checked as public (test resolver), dialled via the OS resolver: localhost is 127.0.0.1."""
    url = receiver.url.replace("127.0.0.1", "localhost")
    created = strict.post(f"{BASE}/endpoints", headers=admin.headers, json={"url": url}).json()[
        "data"
    ]
    sent = strict.post(f"{BASE}/endpoints/{created['id']}/test", headers=admin.headers)
    assert sent.status_code == 200, sent.text
    result = sent.json()["data"]
    assert (result["sent"], result["status"]) == (False, "dead") and result["error"].startswith(
        "URL_FORBIDDEN"
    )
    assert receiver.received == []
    port = str(receiver.httpd.server_address[1])
    assert "127.0.0.1" not in sent.text and port not in sent.text
    outbox = strict.get(f"{BASE}/outbox", headers=admin.headers).json()["data"]["items"]
    assert [(o["status"], o["last_error_code"]) for o in outbox] == [("dead", "URL_FORBIDDEN")]
    assert "127.0.0.1" not in str(outbox)


def test_lists_show_a_fingerprint_of_the_current_secret_never_part_of_it(strict, admin) -> None:
    created = strict.post(
        f"{BASE}/endpoints", headers=admin.headers, json={"url": "https://hooks.public.test/hook"}
    ).json()["data"]
    rotated = strict.post(
        f"{BASE}/endpoints/{created['id']}/rotate-secret", headers=admin.headers
    ).json()["data"]
    listed = strict.get(f"{BASE}/endpoints", headers=admin.headers)
    [item] = listed.json()["data"]["items"]
    assert "secret_prefix" not in item and "secret" not in item
    assert item["secret_fingerprint"] == hashlib.sha256(rotated["secret"].encode()).hexdigest()[:12]
    assert created["secret_fingerprint"] != rotated["secret_fingerprint"]
    for secret in (created["secret"], rotated["secret"]):
        key_material = secret.removeprefix("whsec_")
        assert all(key_material[i : i + 8] not in listed.text for i in range(len(key_material) - 7))
