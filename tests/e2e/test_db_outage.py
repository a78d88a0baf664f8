"""``watchkeeper serve`` on PostgreSQL through a TCP proxy the test cuts: while the database is
unreachable every route answers 503 with ``Retry-After`` and ``/healthz`` says why; the log has one
outage line, no traceback; when the proxy is back the server answers 200 again by itself."""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

import pytest

from e2e.servers import Servers, free_port, http, start_watchkeeper, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]


class Proxy:
    """Forwards 127.0.0.1:port to PostgreSQL; :meth:`close` cuts every connection at once."""

    def __init__(self, port: int, target: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.port, self.target = port, target
        self.listener = socket.create_server(("127.0.0.1", port))
        self.sockets: list[socket.socket] = [self.listener]
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
                upstream = socket.create_connection(self.target)
            except OSError:
                return
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


def test_serve_answers_503_while_the_database_is_away(pg_url: str, tmp_path: Path) -> None:
    port = free_port()
    url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
    proxy = Proxy(port)
    try:
        with Servers() as servers:
            wk = start_watchkeeper(servers, tmp_path / "wk", roles=("ingest", "viewer"),
                                   env={"WATCHKEEPER_DATABASE_URL": url})
            with http() as client:
                assert client.get(f"{wk.url}/api/v1/incidents", headers=wk.headers("viewer")).status_code == 200
                proxy.close()
                for _ in range(5):
                    r = client.get(f"{wk.url}/api/v1/incidents", headers=wk.headers("viewer"))
                    assert r.status_code == 503 and r.headers["retry-after"] == "5", r.text
                    assert r.json()["error"] == "the database is unreachable; retry later"
                posted = client.post(f"{wk.url}/api/v1/ingest/events", headers=wk.headers("ingest"),
                                     json={"service": "web", "name": "Down"})
                assert posted.status_code == 503 and posted.headers["retry-after"] == "5", posted.text
                health = client.get(f"{wk.url}/healthz")
                assert health.status_code == 503 and health.json()["reason"].startswith("database: ")
                proxy = Proxy(port)  # the database is back
                wait_until(lambda: client.get(f"{wk.url}/healthz").status_code == 200,
                           what="healthz to recover", timeout=30, servers=servers)
                r = client.get(f"{wk.url}/api/v1/incidents", headers=wk.headers("viewer"))
                assert r.status_code == 200, r.text
            log = wk.server.log_path.read_text()
            assert "Traceback" not in log, log
            assert log.count("database unreachable: answering 503") == 1, log
            assert "database reachable again" in log
    finally:
        proxy.close()
