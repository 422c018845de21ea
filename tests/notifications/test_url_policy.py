"""The URL policy as pure rules: every address form of the SSRF finding, names via a resolver.

Expectations are written by hand from the IANA special-purpose registries (RFC 6890 and the
RFCs of each form), not derived from the code under test.
"""

from __future__ import annotations

import ipaddress
import socket

import httpx
import pytest

from driftwarden.errors import Invalid
from driftwarden.notifications import urlpolicy
from driftwarden.notifications.urlpolicy import Reach

NEVER, PRIVATE, PUBLIC = Reach.NEVER, Reach.PRIVATE, Reach.PUBLIC


@pytest.mark.parametrize(
    ("address", "reach"),
    [
        ("169.254.169.254", NEVER),  # AWS/GCP/Azure metadata: link-local
        ("169.254.0.1", NEVER),
        ("0.0.0.0", NEVER),  # unspecified (Linux dials it as this host)
        ("0.1.2.3", NEVER),  # "this network", 0.0.0.0/8
        ("224.0.0.1", NEVER),  # multicast
        ("239.255.255.250", NEVER),
        ("255.255.255.255", NEVER),  # limited broadcast
        ("127.0.0.1", PRIVATE),  # loopback, the whole /8
        ("127.255.255.254", PRIVATE),
        ("10.0.0.1", PRIVATE),
        ("172.16.0.1", PRIVATE),
        ("172.31.255.255", PRIVATE),
        ("192.168.1.1", PRIVATE),
        ("100.64.0.1", PRIVATE),  # carrier-grade NAT shared space
        ("192.0.2.10", PRIVATE),  # documentation
        ("198.18.0.1", PRIVATE),  # benchmarking
        ("240.0.0.1", PRIVATE),  # reserved
        ("8.8.8.8", PUBLIC),
        ("172.32.0.1", PUBLIC),  # just past 172.16.0.0/12
        ("1.1.1.1", PUBLIC),
    ],
)
def test_ipv4_addresses(address: str, reach: Reach) -> None:
    assert urlpolicy.classify(address) is reach


@pytest.mark.parametrize(
    ("address", "reach"),
    [
        ("fe80::1", NEVER),  # link-local
        ("febf:ffff::1", NEVER),  # still fe80::/10
        ("::", NEVER),  # unspecified
        ("ff02::1", NEVER),  # multicast
        ("ff05::1:3", NEVER),
        ("::1", PRIVATE),  # loopback
        ("fd00:ec2::254", PRIVATE),  # AWS metadata over IPv6: unique-local fc00::/7
        ("fc00::1", PRIVATE),
        ("fec0::1", PRIVATE),  # deprecated site-local
        ("2001:db8::1", PRIVATE),  # documentation
        ("64:ff9b:1::1", PRIVATE),  # local-use NAT64 prefix
        ("2606:4700:4700::1111", PUBLIC),
        ("2a00:1450:4001:80b::200e", PUBLIC),
    ],
)
def test_ipv6_addresses(address: str, reach: Reach) -> None:
    assert urlpolicy.classify(address) is reach


@pytest.mark.parametrize(
    ("address", "inner", "reach"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1", PRIVATE),  # IPv4-mapped
        ("::ffff:7f00:1", "127.0.0.1", PRIVATE),  # the same, in hex groups
        ("::ffff:169.254.169.254", "169.254.169.254", NEVER),
        ("::ffff:a9fe:a9fe", "169.254.169.254", NEVER),
        ("::ffff:8.8.8.8", "8.8.8.8", PUBLIC),
        ("2002:a9fe:a9fe::1", "169.254.169.254", NEVER),  # 6to4
        ("2002:7f00:1::", "127.0.0.1", PRIVATE),
        ("2002:808:808::1", "8.8.8.8", PUBLIC),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254", NEVER),  # NAT64 well-known prefix
        ("64:ff9b::7f00:1", "127.0.0.1", PRIVATE),
        ("64:ff9b::808:808", "8.8.8.8", PUBLIC),
        ("::127.0.0.1", "127.0.0.1", PRIVATE),  # deprecated IPv4-compatible
        ("::169.254.169.254", "169.254.169.254", NEVER),
    ],
)
def test_ipv4_inside_ipv6_is_judged_by_the_ipv4_address(
    address: str, inner: str, reach: Reach
) -> None:
    assert str(urlpolicy.embedded_ipv4(ipaddress.ip_address(address))) == inner
    assert urlpolicy.classify(address) is reach


@pytest.mark.parametrize(
    "host",
    ["127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0x7f.1", "017700000001", "localhost"],
)
def test_numeric_and_local_forms_are_read_as_the_os_reads_them(host: str) -> None:
    """Short, decimal, hex and octal forms all mean 127.0.0.1 to inet_aton (and so to a connect)."""
    assert urlpolicy.system_resolver(host, 80) == ["127.0.0.1"]


@pytest.mark.parametrize(
    "host", ["127.1", "2130706433", "0x7f000001", "0x7f.1", "017700000001", "localhost"]
)
def test_numeric_forms_in_a_url_are_refused_as_loopback(host: str) -> None:
    with pytest.raises(urlpolicy.ForbiddenAddress):
        urlpolicy.check_url(f"http://{host}:5432/", allow_private=False)
    urlpolicy.check_url(f"http://{host}:5432/", allow_private=True)


def test_a_dotted_octal_url_never_gets_that_far() -> None:
    """httpx refuses 0177.0.0.1 in a URL outright, so the endpoint schema answers 422 first."""
    with pytest.raises(httpx.InvalidURL):
        httpx.URL("http://0177.0.0.1/")


FORBIDDEN_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://127.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://[::1]/",
    "http://127.0.0.1:5432/",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:a9fe:a9fe]/",
    "http://0.0.0.0:8080/",
    "https://[fe80::1]/",
    "http://[fe80::1%25eth0]/",
]


@pytest.mark.parametrize("url", FORBIDDEN_URLS)
def test_the_findings_urls_are_refused_without_private_networks(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        urlpolicy.check_url(url, allow_private=False)
    assert refused.value.code == "NOTIFY_URL_FORBIDDEN"
    assert urlpolicy.host_and_port(url)[0] not in refused.value.message  # names no address


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:5432/", True),
        ("http://[::1]/", True),
        ("http://[fd00:ec2::254]/", True),
        ("http://10.1.2.3/", True),
        ("http://169.254.169.254/", False),
        ("http://[fe80::1]/", False),
        ("http://[::ffff:169.254.169.254]/", False),
        ("http://0.0.0.0/", False),
        ("http://224.0.0.1/", False),
        ("http://255.255.255.255/", False),
    ],
)
def test_private_networks_allowed_but_never_link_local(url: str, allowed: bool) -> None:
    if allowed:
        urlpolicy.check_url(url, allow_private=True)
    else:
        with pytest.raises(urlpolicy.ForbiddenAddress):
            urlpolicy.check_url(url, allow_private=True)


def resolver(table: dict[str, list[str]]) -> urlpolicy.Resolver:
    """A test resolver: names to addresses without DNS; an unknown name does not resolve."""

    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return table[host]

    return resolve


NAMES = resolver(
    {
        "metadata.google.internal": ["169.254.169.254"],
        "hooks.corp.test": ["127.0.0.1"],
        "ec2.metadata.test": ["fd00:ec2::254"],
        "public.test": ["93.184.215.14"],
        "split.test": ["93.184.215.14", "10.0.0.5"],
        "mapped.test": ["::ffff:169.254.169.254"],
    }
)


@pytest.mark.parametrize(
    ("host", "strict", "with_private"),
    [
        ("metadata.google.internal", False, False),
        ("hooks.corp.test", False, True),
        ("ec2.metadata.test", False, True),
        ("public.test", True, True),
        ("split.test", False, True),  # one address inside is enough to refuse the name
        ("mapped.test", False, False),
        ("nowhere.test", True, True),  # unresolvable: checked at delivery
    ],
)
def test_names_are_judged_by_every_address_they_resolve_to(
    host: str, strict: bool, with_private: bool
) -> None:
    for allow_private, allowed in ((False, strict), (True, with_private)):
        url = f"https://{host}/hook"
        if allowed:
            urlpolicy.check_url(url, allow_private=allow_private, resolve=NAMES)
        else:
            with pytest.raises(urlpolicy.ForbiddenAddress):
                urlpolicy.check_url(url, allow_private=allow_private, resolve=NAMES)


def test_the_hint_names_the_setting_only_where_it_would_help() -> None:
    with pytest.raises(urlpolicy.ForbiddenAddress) as private:
        urlpolicy.check_url("http://hooks.corp.test/", allow_private=False, resolve=NAMES)
    with pytest.raises(urlpolicy.ForbiddenAddress) as link_local:
        urlpolicy.check_url("http://metadata.google.internal/", allow_private=False, resolve=NAMES)
    assert "NOTIFY_ALLOW_PRIVATE_NETWORKS" in private.value.message
    assert "NOTIFY_ALLOW_PRIVATE_NETWORKS" not in link_local.value.message
    assert "169.254" not in link_local.value.message and "127.0" not in private.value.message


def test_the_resolver_is_asked_with_the_hosts_port() -> None:
    asked: list[tuple[str, int]] = []
    urlpolicy.check_url(
        "https://public.test/x",
        allow_private=False,
        resolve=lambda h, p: asked.append((h, p)) or ["93.184.215.14"],
    )
    urlpolicy.check_url(
        "http://public.test:8443/x",
        allow_private=False,
        resolve=lambda h, p: asked.append((h, p)) or ["93.184.215.14"],
    )
    assert asked == [("public.test", 443), ("public.test", 8443)]
