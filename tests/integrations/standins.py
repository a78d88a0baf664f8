"""Local HTTP stand-ins for the vendors' APIs: each checks the real wire format and the
authentication of every request (answering 400 / 401 as the vendor would), records it, and plays
a script of injected failures first — a status with headers (500, 429 + ``Retry-After``), a slow
answer, a connection reset.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


@dataclass
class Fault:
    """One scripted answer: ``status`` with ``headers``/``body``, after ``delay`` seconds; or a
    connection ``reset`` (RST, no answer)."""

    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    reset: bool = False
    #: answer with the whole request (headers and body) in the body, as some APIs echo input in
    #: their errors: a secret in it must still never reach a log, an error or the audit log
    echo: bool = False


#: A vendor check: the request -> None when it is what the vendor accepts, else (status, body).
Check = Callable[[Seen], tuple[int, bytes] | None]
#: The vendor's answer to an accepted request: (status, headers, body).
Answer = Callable[[Seen], tuple[int, dict[str, str], bytes]]


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up (a killed server) is expected here


class StandIn:
    """A vendor API on 127.0.0.1 (a free port)."""

    def __init__(self, check: Check, answer: Answer) -> None:
        self.check, self.answer = check, answer
        self.requests: list[Seen] = []  # every request received (faults included)
        self.accepted: list[Seen] = []  # requests the vendor accepted
        self.script: list[Fault] = []
        self.delay = 0.0  # seconds every accepted request waits before its answer (a slow receiver)
        self.lock = threading.Lock()
        stand = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                seen = Seen("POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                            self.rfile.read(length))
                with stand.lock:
                    stand.requests.append(seen)
                    fault = stand.script.pop(0) if stand.script else None
                if fault is not None:
                    if fault.delay:
                        time.sleep(fault.delay)
                    if fault.reset:
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                        self.close_connection = True
                        return
                    body = fault.body
                    if fault.echo:
                        body = orjson.dumps({"error": "bad request", "you_sent": seen.headers,
                                             "body": seen.body.decode("utf-8", "replace")})
                    self._send(fault.status, fault.headers, body)
                    return
                refused = stand.check(seen)
                if refused is not None:
                    self._send(refused[0], {"Content-Type": "application/json"}, refused[1])
                    return
                if stand.delay:
                    time.sleep(stand.delay)
                with stand.lock:
                    stand.accepted.append(seen)
                self._send(*stand.answer(seen))

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

        self.server = _Quiet(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail(self, *faults: Fault) -> None:
        with self.lock:
            self.script.extend(faults)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
