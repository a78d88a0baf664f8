"""One lab service: ``GET /`` calls each dependency's ``GET /`` and answers 500 if any call failed
(or if its injected fault says so); ``GET /metrics`` exports Prometheus metrics; ``POST /fault``
sets the injected fault (JSON ``{"error": 0..1, "latency": seconds}``; ``{}`` clears it).

    python svc.py --name checkout --port 8001 --dep payments-db=http://127.0.0.1:8002,http://127.0.0.1:8003

Binds to 127.0.0.1 only. Started (and killed, to simulate a crash) by ``record.py``.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

HOST = "127.0.0.1"
CALL_TIMEOUT = 2.0
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5)


class Service:
    def __init__(self, name: str, deps: dict[str, list[str]]) -> None:
        self.name = name
        self.deps = deps
        self.error = 0.0
        self.latency = 0.0
        self.lock = threading.Lock()
        self.client = httpx.Client(timeout=CALL_TIMEOUT, trust_env=False)
        self.registry = CollectorRegistry()
        self.requests = Counter("lab_requests", "Requests served, by status code", ["code"], registry=self.registry)
        self.duration = Histogram("lab_request_duration_seconds", "Time to serve GET /", buckets=BUCKETS,
                                  registry=self.registry)
        self.calls = Counter("lab_dependency_calls", "Calls to dependencies, by result", ["dependency", "result"],
                             registry=self.registry)

    def serve(self) -> int:
        started = time.perf_counter()
        with self.lock:
            error, latency = self.error, self.latency
        ok = True
        for dep, urls in self.deps.items():
            try:
                fine = self.client.get(random.choice(urls) + "/").status_code < 500
            except httpx.HTTPError:
                fine = False
            self.calls.labels(dep, "ok" if fine else "error").inc()
            ok = ok and fine
        if latency > 0:
            time.sleep(latency * random.uniform(0.9, 1.1))
        if error > 0 and random.random() < error:
            ok = False
        code = 200 if ok else 500
        self.requests.labels(str(code)).inc()
        self.duration.observe(time.perf_counter() - started)
        return code


def handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._reply(200, generate_latest(service.registry), CONTENT_TYPE_LATEST)
            elif self.path == "/":
                code = service.serve()
                self._reply(code, f"{service.name} {code}\n".encode())
            else:
                self._reply(404, b"not found\n")

        def do_POST(self) -> None:
            if self.path != "/fault":
                self._reply(404, b"not found\n")
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                spec = json.loads(self.rfile.read(length) or b"{}")
                error, latency = float(spec.get("error", 0.0)), float(spec.get("latency", 0.0))
            except (ValueError, TypeError, AttributeError) as exc:
                self._reply(400, f"bad fault: {exc}\n".encode())
                return
            with service.lock:
                service.error, service.latency = error, latency
            self._reply(200, json.dumps({"service": service.name, "error": error, "latency": latency}).encode(),
                        "application/json")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dep", action="append", default=[], help="NAME=URL[,URL...] (repeatable)")
    args = parser.parse_args()
    deps: dict[str, list[str]] = {}
    for spec in args.dep:
        dep, _, urls = spec.partition("=")
        deps[dep] = [u for u in urls.split(",") if u]
    service = Service(args.name, deps)
    server = ThreadingHTTPServer((HOST, args.port), handler(service))
    server.daemon_threads = True
    print(f"{args.name} listening on {HOST}:{args.port}, deps {deps}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
