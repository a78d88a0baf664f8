"""A Prometheus stand-in for the watch tests: answers ``/api/v1/query`` with the series it is
given, or fails the way a real one does. Usable as an ``httpx.MockTransport`` handler or as a
small HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import httpx


class FakePrometheus:
    def __init__(self) -> None:
        self.series: dict[str, float] = {}  # service -> current value
        self.mode = "up"  # up | down (connection refused) | unavailable (503) | bad (400)
        self.queries: list[str] = []
        self.t = 1_700_000_000.0
        self.step = 15.0

    def body(self, query: str) -> tuple[int, dict[str, object]]:
        self.queries.append(query)
        if self.mode == "unavailable":
            return 503, {"status": "error", "errorType": "unavailable", "error": "storage is busy"}
        if self.mode == "bad":
            return 400, {"status": "error", "errorType": "bad_data", "error": "parse error"}
        self.t += self.step
        result = [{"metric": {"service": s}, "value": [self.t, repr(v)]} for s, v in sorted(self.series.items())]
        return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}

    # -- as an httpx transport ---------------------------------------------------------------
    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.mode == "down":
            raise httpx.ConnectError("connection refused", request=request)
        status, body = self.body(request.url.params.get("query", ""))
        return httpx.Response(status, json=body)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    # -- as a server -------------------------------------------------------------------------
    @contextmanager
    def serve(self) -> Iterator[str]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if fake.mode == "down":
                    self.connection.close()  # the closest a live server gets to refusing
                    return
                status, body = fake.body(parse_qs(url.query).get("query", [""])[0])
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join()


def wait_for(condition: object, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
