"""Where a per-org webhook may go: every address its host resolves to, judged with `ipaddress`.

The rule is in docs/reference/notifications.md (URL policy): link-local, unspecified, multicast
and broadcast addresses never; loopback and private ranges only when the operator allows them.
Numeric hosts (`127.1`, `2130706433`, `0x7f000001`) are read by the OS resolver, exactly as a
connection would read them, so no second parser can disagree with the one that connects.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
from collections.abc import Callable, Iterable

import httpx

from driftwarden.errors import Invalid

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> every address the host stands for; raises OSError when it stands for none.
Resolver = Callable[[str, int], list[str]]

NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
V4_COMPATIBLE = ipaddress.ip_network("::/96")
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
BROADCAST = ipaddress.IPv4Address("255.255.255.255")


class Reach(enum.Enum):
    PUBLIC = "public"
    PRIVATE = "private"  # loopback and private ranges: only with NOTIFY_ALLOW_PRIVATE_NETWORKS
    NEVER = "never"  # link-local, unspecified, multicast, broadcast


class ForbiddenAddress(Invalid):
    """The URL's host is, or resolves to, an address webhooks may not reach (HTTP 422)."""

    code = "NOTIFY_URL_FORBIDDEN"


def embedded_ipv4(ip: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries and routes to: mapped, 6to4, NAT64, IPv4-compatible."""
    if ip.version == 4:
        return None
    assert isinstance(ip, ipaddress.IPv6Address)
    if ip.ipv4_mapped is not None or ip.sixtofour is not None:
        return ip.ipv4_mapped or ip.sixtofour
    if ip in NAT64 or (ip in V4_COMPATIBLE and int(ip) > 1):  # :: and ::1 are themselves
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def classify(address: str | Address) -> Reach:
    """How far an address is from the public internet; an embedded IPv4 address decides for it."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    inner = embedded_ipv4(ip)
    if inner is not None:
        return classify(inner)
    if any(
        (ip.is_link_local, ip.is_unspecified, ip.is_multicast, ip == BROADCAST, ip in THIS_NETWORK)
    ):
        return Reach.NEVER
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    if any(
        (
            ip.is_loopback,
            ip.is_private,
            ip.is_reserved,
            not ip.is_global,
            site_local,
            ip in NAT64_LOCAL,
        )
    ):
        return Reach.PRIVATE
    return Reach.PUBLIC


def permitted(reach: Reach, *, allow_private: bool) -> bool:
    return reach is Reach.PUBLIC or (reach is Reach.PRIVATE and allow_private)


def refuse_forbidden(addresses: Iterable[str], *, allow_private: bool) -> None:
    """Raise if any address is out of bounds: a host that also points inside is refused whole.

    The message names no address and no port: it says what kind of place, not which one.
    """
    refused = {r for r in map(classify, addresses) if not permitted(r, allow_private=allow_private)}
    if not refused:
        return
    hint = " unless NOTIFY_ALLOW_PRIVATE_NETWORKS=true" if refused == {Reach.PRIVATE} else ""
    raise ForbiddenAddress(
        f"the URL's host is, or resolves to, an address webhooks may not be sent to{hint}"
    )


def system_resolver(host: str, port: int) -> list[str]:
    """The OS resolver's answer, as a connection would get it: numeric forms, /etc/hosts, DNS."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as exc:  # a label the idna codec refuses: no connection could be made
        raise socket.gaierror(socket.EAI_NONAME, "the host name cannot be resolved") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def host_and_port(url: str) -> tuple[str, int]:
    """The host string and port the HTTP client will connect with (it is what gets resolved)."""
    parsed = httpx.URL(url)
    return parsed.raw_host.decode("ascii"), parsed.port or (443 if parsed.scheme == "https" else 80)


def check_url(url: str, *, allow_private: bool, resolve: Resolver = system_resolver) -> None:
    """At create/update: refuse a forbidden host. Resolves only; no connection is ever attempted.

    A host that does not resolve now is let through: delivery resolves again and refuses it then.
    """
    host, port = host_and_port(url)
    try:
        found = resolve(host, port)
    except OSError:
        found = [host.replace("%25", "%")] if _is_address(host.replace("%25", "%")) else []
    refuse_forbidden(found, allow_private=allow_private)


def _is_address(host: str) -> bool:
    """An IP literal the resolver would not take, such as `fe80::1%25eth0` (a zone, URL-encoded)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
