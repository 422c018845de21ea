"""The HTTP transport for per-org endpoints: connect only to an address the URL policy allowed.

The host is resolved once, every address is checked (docs/reference/notifications.md, URL
policy), and the socket is opened to a checked address itself, so a DNS answer that changes
between the check and the connection (rebinding) cannot steer it inside. httpcore still takes
the Host header from the URL and does TLS with `server_hostname` = the URL's host, so SNI and
the certificate check are those of the name, not of the address.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable

import httpcore
import httpx

from driftwarden.notifications import urlpolicy

# httpcore's own type for a socket option; re-spelt loosely here to stay off its private modules.
SocketOptions = Iterable[tuple]
# The request extension that marks a request for the operator's own NOTIFY_WEBHOOK_URL.
TRUSTED = "driftwarden.trusted_destination"


class CheckedBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, but `connect_tcp(host)` resolves, checks, then dials the IP."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolve: urlpolicy.Resolver,
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        self._allow_private = allow_private
        self._resolve = resolve
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: SocketOptions | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._resolve(host, port)
        except OSError:
            raise httpcore.ConnectError("the destination's host could not be resolved") from None
        if not addresses:
            raise httpcore.ConnectError("the destination's host could not be resolved")
        urlpolicy.refuse_forbidden(addresses, allow_private=self._allow_private)
        failure: Exception | None = None
        for address in addresses:  # in the resolver's order, as socket.create_connection would
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )  # type: ignore[arg-type]
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: SocketOptions | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("webhooks are sent over TCP only")


class CheckedTransport(httpx.HTTPTransport):
    """An `httpx.HTTPTransport` whose connection pool dials through `CheckedBackend`.

    httpx builds its pool without a `network_backend` argument, so the pool is rebuilt here from
    httpcore's public constructor with the same settings httpx would give it.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        limits: httpx.Limits,
        ssl_context: ssl.SSLContext,
        resolve: urlpolicy.Resolver = urlpolicy.system_resolver,
    ) -> None:
        super().__init__(verify=ssl_context, limits=limits)  # its pool is replaced just below
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=CheckedBackend(allow_private=allow_private, resolve=resolve),
        )


class RoutingTransport(httpx.BaseTransport):
    """Checked by default; only a request marked trusted (the operator's own URL) goes direct."""

    def __init__(self, *, checked: httpx.BaseTransport, trusted: httpx.BaseTransport) -> None:
        self._checked = checked
        self._trusted = trusted

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        chosen = self._trusted if request.extensions.get(TRUSTED) is True else self._checked
        return chosen.handle_request(request)

    def close(self) -> None:
        self._checked.close()
        self._trusted.close()
