"""Which addresses the bridge may call out to: never its own network unless the config says so.

A subscriber URL is the one address a caller of the API chooses, so the bridge checks
where it leads (SPEC §7.3): a host that resolves to a loopback, link-local, private,
multicast, reserved or unspecified address (IPv4 or IPv6, an IPv4 address inside an IPv6
one too) is refused unless ``[bridge] subscriber_allow_private = true``. The check runs
when a URL is subscribed (:func:`check_url`) and again whenever a connection is opened
(:class:`GuardedTransport`), since a name may resolve elsewhere by then; the connection
goes to the very addresses checked, never to a second lookup's.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as Late
from contextlib import contextmanager
from typing import Any

import httpcore
import httpx

ALLOW_KEY = "[bridge] subscriber_allow_private"
RULE = (
    "subscriber URLs may not reach loopback, link-local, private, multicast, reserved or "
    f"unspecified addresses unless {ALLOW_KEY} = true"
)
"""The rule as a refusal states it."""

RESOLVE_SECONDS = 5.0
"""How long a subscribe waits for its URL's host to resolve."""

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_RESOLVER = ThreadPoolExecutor(max_workers=8, thread_name_prefix="waimai-resolve")
"""Where lookups run, so that a caller stops waiting for one at its own time (the system
resolver's timeouts end the lookup itself)."""


class AddressNotAllowed(Exception):
    """A host resolved to an address the rule refuses; ``reason`` names its kind."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"address not allowed: {reason}")
        self.reason = reason


class Unresolvable(Exception):
    """A host that does not resolve to any address."""


def refusal(address: Address) -> str | None:
    """Why the rule refuses ``address`` (``"loopback"``, ``"private"``, …), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = address.ipv4_mapped or address.sixtofour
        if inner is None and address in _NAT64:
            inner = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if inner is not None:
            return refusal(inner)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("private", address.is_private or not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def resolve(host: str, port: int, timeout: float) -> list[str]:
    """The addresses ``host`` resolves to, in the resolver's order, each once; raises
    :class:`Unresolvable` when it does not resolve within ``timeout`` seconds."""
    lookup = _RESOLVER.submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        found = lookup.result(timeout)
    except Late:
        raise Unresolvable(f"{host} did not resolve within {timeout:g} s") from None
    except (OSError, UnicodeError) as exc:
        raise Unresolvable(f"{host} does not resolve ({exc})") from None
    addresses = [str(info[4][0]) for info in found if info[0] in (socket.AF_INET, socket.AF_INET6)]
    if not addresses:
        raise Unresolvable(f"{host} does not resolve to an IPv4 or IPv6 address")
    return list(dict.fromkeys(addresses))


def check(addresses: Iterable[str], *, allow_private: bool) -> None:
    """Raise :class:`AddressNotAllowed` if the rule refuses any of ``addresses``."""
    if allow_private:
        return
    for text in addresses:
        reason = refusal(ipaddress.ip_address(text))
        if reason is not None:
            raise AddressNotAllowed(reason)


def check_url(url: str, *, allow_private: bool) -> None:
    """Resolve the host of an http(s) ``url`` and check every address it resolves to;
    raises :class:`Unresolvable` or :class:`AddressNotAllowed`."""
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    host = parsed.raw_host.decode("ascii")
    check(resolve(host, port, RESOLVE_SECONDS), allow_private=allow_private)


class _Deadline(threading.local):
    """When the request the thread is making must be over (``time.monotonic``)."""

    at = float("inf")

    def left(self, timeout: float | None, error: type[Exception]) -> float:
        """``timeout`` cut to what the deadline leaves; ``error`` once nothing is left."""
        left = self.at - time.monotonic()
        if left <= 0:
            raise error("the request ran out of its time")
        return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    """A connection whose every wait ends by the deadline of the request using it."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: _Deadline) -> None:
        self._inner = inner
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadline.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadline.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:  # fmt: skip
        wait = self._deadline.left(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(
            self._inner.start_tls(ssl_context, server_hostname, wait), self._deadline
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    """Connections opened only to the addresses a host resolves to, once checked."""

    def __init__(self, *, allow_private: bool, deadline: _Deadline) -> None:
        self._allow_private = allow_private
        self._deadline = deadline

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:  # fmt: skip
        try:
            addresses = resolve(host, port, self._deadline.left(None, httpcore.ConnectTimeout))
        except Unresolvable as exc:
            raise httpcore.ConnectError(str(exc)) from None
        check(addresses, allow_private=self._allow_private)
        failure: Exception | None = None
        for address in addresses:  # TLS still checks the certificate against ``host``
            wait = self._deadline.left(timeout, httpcore.ConnectTimeout)
            try:
                stream = super().connect_tcp(address, port, wait, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
                continue
            return _BoundedStream(stream, self._deadline)
        assert failure is not None
        raise failure


_ERRORS: tuple[tuple[type[Exception], Callable[[str], httpx.HTTPError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.ProxyError, httpx.ProxyError),
)


@contextmanager
def _httpx_errors() -> Iterator[None]:
    """httpcore's errors raised as httpx's, as httpx's own transport does."""
    try:
        yield
    except Exception as exc:
        for theirs, ours in _ERRORS:
            if isinstance(exc, theirs):
                raise ours(str(exc)) from exc
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class GuardedTransport(httpx.BaseTransport):
    """An httpx transport that connects only where the rule allows, checked at every
    connection, and ends each request (connecting, sending, the answer's headers and any
    of its body read in the same thread) within ``total_seconds``.

    Proxies and redirects are the client's business: give it ``trust_env=False`` and
    leave ``follow_redirects`` off.
    """

    def __init__(
        self, *, allow_private: bool, total_seconds: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:  # fmt: skip
        self._total = total_seconds
        self._deadline = _Deadline()
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context or httpx.create_ssl_context(),
            network_backend=_GuardedBackend(allow_private=allow_private, deadline=self._deadline),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the guarded pool."""
        assert isinstance(request.stream, httpx.SyncByteStream)
        self._deadline.at = time.monotonic() + self._total
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            answer = self._pool.handle_request(core)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(
            status_code=answer.status, headers=answer.headers,
            stream=_Body(answer.stream), extensions=answer.extensions,
        )  # fmt: skip

    def close(self) -> None:
        """Close the pool's connections."""
        self._pool.close()
