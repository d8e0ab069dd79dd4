"""Where the bridge may call out to (SPEC §7.3): the address rule, subscribe-time refusals
(422) unless ``subscriber_allow_private``, and the transport that checks again at every
connection, connects to the addresses it checked and still verifies TLS against the URL's
host name."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.test_pipeline import AUTH, config_text, registry
from waimai_bridge import egress
from waimai_bridge.config import load_config
from waimai_bridge.egress import ALLOW_KEY, AddressNotAllowed, GuardedTransport, refusal
from waimai_bridge.runtime import Bridge
from waimai_bridge.web.app import create_app

SECRET = "subscriber-secret-0123456789"


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("0.0.0.0", "unspecified"),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("169.254.169.254", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("100.64.0.1", "private"),  # carrier-grade NAT
        ("192.0.2.1", "private"),  # documentation
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::", "unspecified"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),  # NAT64 of 169.254.169.254
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("::127.0.0.1", "reserved"),  # IPv4-compatible, long deprecated
        ("2001:db8::1", "private"),  # documentation
        ("1.1.1.1", None),
        ("93.184.216.34", None),
        ("::ffff:1.1.1.1", None),
        ("64:ff9b::101:101", None),  # NAT64 of 1.1.1.1
        ("2606:4700::1111", None),
    ],
)
def test_the_rule_refuses_every_address_of_the_bridges_own_networks(
    address: str, reason: str | None
) -> None:
    assert refusal(ipaddress.ip_address(address)) == reason


def _client(folder: Path, *, allow_private: bool) -> TestClient:
    extra = f"subscriber_allow_private = {str(allow_private).lower()}"
    path = folder / "bridge.toml"
    path.write_text(config_text(f"sqlite:///{folder / 'b.sqlite3'}", bridge_extra=extra))
    plugins = registry()
    return TestClient(create_app(Bridge(load_config(path, plugins), plugins)))


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The API of a bridge with the default config: private addresses refused."""
    with _client(tmp_path_factory.mktemp("guarded"), allow_private=False) as client:
        yield client


@pytest.fixture(scope="module")
def open_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The API of a bridge whose config allows private addresses."""
    with _client(tmp_path_factory.mktemp("open"), allow_private=True) as client:
        yield client


def _subscribe(client: TestClient, url: str) -> httpx.Response:
    answer: httpx.Response = client.post(
        "/api/v1/subscriptions", json={"url": url, "secret": SECRET}, headers=AUTH
    )
    return answer


def _unsubscribe_all(client: TestClient) -> None:
    for row in client.get("/api/v1/subscriptions", headers=AUTH).json():
        client.delete(f"/api/v1/subscriptions/{row['id']}", headers=AUTH)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://localhost:9/hook", "loopback"),  # a name resolving to 127.0.0.1
        ("http://2130706433/hook", "loopback"),  # 127.0.0.1 as one number
        ("http://0x7f.1/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://10.0.0.8/hook", "private"),
        ("https://192.168.1.1/hook", "private"),
        ("http://[::1]:9/hook", "loopback"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://[fd12:3456::1]/hook", "private"),
        ("http://0.0.0.0:9/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://user:pass@127.0.0.1:9/hook", "loopback"),
    ],
)
def test_a_url_reaching_the_bridges_own_networks_is_refused_naming_the_rule(
    guarded: TestClient, url: str, reason: str
) -> None:
    answer = _subscribe(guarded, url)
    assert answer.status_code == 422, answer.text
    article = "an" if reason == "unspecified" else "a"
    assert f"url: its host resolves to {article} {reason} address" in answer.text
    assert f"{ALLOW_KEY} = true" in answer.text
    assert "pass" not in answer.text
    assert guarded.get("/api/v1/subscriptions", headers=AUTH).json() == []


def test_a_url_whose_host_does_not_resolve_is_refused(guarded: TestClient) -> None:
    answer = _subscribe(guarded, "https://no-such-host.invalid/hook")
    assert answer.status_code == 422, answer.text
    assert "url: no-such-host.invalid does not resolve" in answer.text
    assert guarded.get("/api/v1/subscriptions", headers=AUTH).json() == []


def test_a_public_address_is_subscribed(guarded: TestClient) -> None:
    try:
        answer = _subscribe(guarded, "https://1.1.1.1/hook")
        assert answer.status_code == 201, answer.text
    finally:
        _unsubscribe_all(guarded)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/hook", "http://localhost:9/hook", "http://10.0.0.8/hook"]
)
def test_private_addresses_are_subscribed_when_the_config_allows_them(
    open_bridge: TestClient, url: str
) -> None:
    try:
        answer = _subscribe(open_bridge, url)
        assert answer.status_code == 201, answer.text
        assert answer.json()["url"] == url
    finally:
        _unsubscribe_all(open_bridge)


class _Endpoint:
    """A local HTTP(S) endpoint that answers 200 and counts the requests it was sent."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.requests = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                endpoint.requests += 1
                self.send_response(200)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if context is not None:
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
        assert not self._thread.is_alive()


@pytest.fixture
def endpoint() -> Iterator[_Endpoint]:
    made = _Endpoint()
    yield made
    made.close()


def _post(transport: GuardedTransport, url: str) -> httpx.Response:
    with httpx.Client(transport=transport, trust_env=False) as client:
        return client.post(url, content=b"{}")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_the_transport_refuses_a_private_address_when_connecting(
    endpoint: _Endpoint, host: str
) -> None:
    transport = GuardedTransport(allow_private=False, total_seconds=5)
    with pytest.raises(AddressNotAllowed, match=r"^address not allowed: loopback$"):
        _post(transport, f"http://{host}:{endpoint.port}/hook")
    assert endpoint.requests == 0
    allowed = GuardedTransport(allow_private=True, total_seconds=5)
    assert _post(allowed, f"http://{host}:{endpoint.port}/hook").status_code == 200
    assert endpoint.requests == 1


def _openssl(*arguments: str | Path) -> None:
    subprocess.run(["openssl", *map(str, arguments)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA and a certificate it signed for ``localhost`` (and nothing else)."""
    folder = tmp_path_factory.mktemp("tls")
    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl("req", "-x509", *curve, "-keyout", folder / "ca.key", "-out", folder / "ca.pem",
             "-days", "2", "-subj", "/CN=waimai test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign")  # fmt: skip
    _openssl("req", *curve, "-keyout", folder / "host.key", "-out", folder / "host.csr",
             "-subj", "/CN=localhost")  # fmt: skip
    (folder / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    _openssl("x509", "-req", "-in", folder / "host.csr", "-CA", folder / "ca.pem",
             "-CAkey", folder / "ca.key", "-CAcreateserial", "-days", "2",
             "-out", folder / "host.pem", "-extfile", folder / "ext.cnf")  # fmt: skip
    return folder


def test_tls_is_verified_against_the_urls_host_name_not_the_address_connected_to(
    certificates: Path,
) -> None:
    serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    serving.load_cert_chain(certificates / "host.pem", certificates / "host.key")
    trusting = ssl.create_default_context(cafile=str(certificates / "ca.pem"))
    server = _Endpoint(serving)
    try:
        transport = GuardedTransport(allow_private=True, total_seconds=5, ssl_context=trusting)
        assert _post(transport, f"https://localhost:{server.port}/hook").status_code == 200
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            _post(transport, f"https://127.0.0.1:{server.port}/hook")  # the certificate's
        untrusted = GuardedTransport(allow_private=True, total_seconds=5)  # the system's CAs
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            _post(untrusted, f"https://localhost:{server.port}/hook")
    finally:
        server.close()
    assert server.requests == 1


def test_a_subscribe_waits_for_a_slow_resolver_only_so_long(
    guarded: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    answered = threading.Event()
    system = socket.getaddrinfo

    def stuck(host: str, *args: Any, **kwargs: Any) -> Any:
        if host == "slow.example":  # a resolver that has not answered yet
            answered.wait(10)
        return system(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", stuck)
    monkeypatch.setattr(egress, "RESOLVE_SECONDS", 0.2)
    try:
        answer = _subscribe(guarded, "https://slow.example/hook")
    finally:
        answered.set()
    assert answer.status_code == 422, answer.text
    assert "url: slow.example did not resolve within 0.2 s" in answer.text
