"""The HTTP client under every HTTP integration (urllib3 pools): connections kept alive per
destination, TLS certificates verified, redirects answered but never followed, and the standard
proxy settings honoured. The retry rules themselves are the conformance suite's."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from watchkeeper.integrations.base import DeliveryError
from watchkeeper.integrations.http import HttpSender, Pools

TLS = Path(__file__).parent / "tls"


class Server:
    """127.0.0.1 on a free port, HTTP/1.1 with keep-alive: records each request's path and the
    client port it came from, and answers ``status`` (with ``Location`` for a redirect)."""

    def __init__(self, *, tls: bool = False, status: int = 200) -> None:
        self.paths: list[str] = []
        self.ports: list[int] = []
        self.status = status
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                server.paths.append(self.path)
                server.ports.append(self.client_address[1])
                self.send_response(server.status)
                if 300 <= server.status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(TLS / "localhost-cert.pem", TLS / "localhost-key.pem")
            self.http.socket = context.wrap_socket(self.http.socket, server_side=True)
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.http.server_address[1]}"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    made: list[Server] = []
    yield made
    for server in made:
        server.close()


def sender(**pools: Any) -> HttpSender:
    return HttpSender("hook", timeout_seconds=2.0, retries=0, pools=Pools(2.0, **pools) if pools else None)


def test_connections_are_kept_alive_per_destination(servers: list[Server]) -> None:
    one, two = Server(), Server()
    servers += [one, two]
    http = sender(proxies={})
    for _ in range(20):
        assert http.request("POST", f"{one.url}/a", json={"n": 1}).json() == {}
        http.request("POST", f"{two.url}/b", content=b"{}")
    assert len(set(one.ports)) == 1 and len(set(two.ports)) == 1  # one TCP connection each, 20 posts
    http.close()


def test_a_certificate_nobody_vouches_for_is_refused(servers: list[Server]) -> None:
    server = Server(tls=True)
    servers.append(server)
    with pytest.raises(DeliveryError) as caught:
        sender(proxies={}).request("POST", f"{server.url}/hook", json={})
    assert caught.value.retryable and caught.value.status is None and "cannot reach" in str(caught.value)
    assert "SSLError" in str(caught.value) and server.paths == []  # nothing was sent
    trusting = ssl.create_default_context(cafile=str(TLS / "localhost-cert.pem"))
    assert sender(proxies={}, tls=trusting).request("POST", f"{server.url}/hook", json={}).status_code == 200


def test_a_redirect_is_refused_not_followed(servers: list[Server]) -> None:
    server = Server(status=302)
    servers.append(server)
    with pytest.raises(DeliveryError) as caught:
        sender(proxies={}).request("POST", f"{server.url}/hook", json={})
    assert not caught.value.retryable and caught.value.status == 302 and server.paths == ["/hook"]


def test_the_proxy_settings_are_honoured(servers: list[Server]) -> None:
    proxy = Server()
    servers.append(proxy)
    pools = Pools(2.0, proxies={"http": proxy.url, "no": "localhost,.internal.example"})
    http = HttpSender("hook", timeout_seconds=2.0, retries=0, pools=pools)
    http.request("POST", "http://hooks.example.com:8080/wk?x=1", json={})
    assert proxy.paths == ["http://hooks.example.com:8080/wk?x=1"]  # the absolute form: a forward proxy
    assert pools.for_url("http://a.internal.example/x") is pools.direct
    assert pools.for_url("https://hooks.example.com/x") is pools.direct  # no https_proxy given
    assert pools.for_url("http://hooks.example.com/x") is not pools.direct
