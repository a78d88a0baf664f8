"""One lab service, run as its own process::

    python -m watchkeeper.lab.service --name checkout --port 8001 --dir .watchkeeper-lab \\
        --deps payment=http://127.0.0.1:8002 cache=http://127.0.0.1:8003 [--otlp-endpoint http://127.0.0.1:4318]

``GET /`` (the page) and ``GET /item`` (one item) do the service's work: each calls the same path on
every dependency (one of its instances, as listed in the lab's ``lab.json``), checks the answers, and
answers 200 with ``{"service", "path", "status", "items": [{"id", "price"}]}``, or 502 when a
dependency call failed, or 500 when its own fault or configuration says so or a dependency answered
a body that does not validate (a price that is not a positive number). ``GET /healthz`` answers while
the process lives; ``GET /metrics`` is Prometheus text (prometheus_client). ``POST /admin/fault`` sets
an in-process fault (``{"kind": …, "id": …, "duration_s": …}`` plus the kind's parameters),
``GET /admin/fault`` lists the active ones, ``DELETE /admin/fault[?kind=K]`` ends them. A fault with
a duration ends by itself; the instance asked to ``journal`` it then appends ``{"id", "ended_at",
"ended_by": "expiry"}`` to ``faults.jsonl``. Binds to 127.0.0.1 only.

Signals: every request is a server span and every dependency call a client span (OpenTelemetry SDK,
W3C ``traceparent`` propagated in the request headers, ``service.name`` = the service, status ERROR
on 5xx), exported over OTLP/HTTP when ``--otlp-endpoint`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set
(see :mod:`watchkeeper.lab.otel`). ``logs/<name>.log`` has one JSON object per line: ``timestamp``,
``level``, ``service``, ``message``, ``instance``, and ``trace_id``/``span_id`` when written inside
a span.

Faults are real but bounded: ``cpu_hog`` burns a core hashing (hashlib releases the GIL, so the
service still answers), ``memory_leak`` keeps touched 1 MB blocks (≤ ``max_mb``, default 280),
``disk_fill`` writes files into the service's data directory until it is ≥ 96 % of its capacity.
The code-level faults show mainly in logs and traces: ``exception`` makes one path raise (500 and a
stack trace in the log), ``wrong_value`` (a deployed configuration) answers 200 with negative prices
that make the callers fail, ``edge_delay`` holds requests from one caller before they are handled
(the caller's client span grows, this service's server span does not: a slow link, not a slow service).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from opentelemetry import propagate
from opentelemetry.trace import NonRecordingSpan, SpanKind, Status, StatusCode, Tracer, get_current_span
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

from watchkeeper.lab import otel
from watchkeeper.lab.net import HOST, append_line, now_iso, request

CALL_TIMEOUT = 5.0
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MB = 1024 * 1024
#: Where a dependency outage sends the target's calls: nothing listens on port 1, so they are refused.
REFUSED_URL = f"http://{HOST}:1"
IN_PROCESS = ("hang", "error_burst", "cpu_hog", "memory_leak", "disk_fill", "bad_deploy", "dependency_outage",
              "exception", "wrong_value", "edge_delay")
#: Faults that are a deployed configuration: the service reloads it when they start and end.
CONFIG_FAULTS = ("bad_deploy", "wrong_value")
#: The paths that do work (``/`` the page, ``/item`` one item); each calls the same path downstream.
PATHS = ("/", "/item")
#: Who is calling (set by every lab caller, as a service mesh's source identity would be).
CALLER_HEADER = "X-Lab-Caller"
LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR,
          "CRITICAL": logging.CRITICAL}
#: A dependency call slower than this is logged at WARNING.
SLOW_CALL_S = 0.25
BASELINE = {"version": "v1", "error_ratio": 0.0}
_rng = random.Random()  # noqa: S311 - jitter and sampling, not secrets


def config_path(directory: Path, name: str) -> Path:
    return directory / "config" / f"{name}.json"


def data_dir(directory: Path, name: str) -> Path:
    return directory / "data" / name


def disk_used(path: Path) -> int:
    """Bytes in the regular files of ``path`` (not recursive: the data directory is flat)."""
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path):
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    return total


def read_config(directory: Path, name: str) -> dict[str, Any]:
    try:
        config = json.loads(config_path(directory, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return dict(BASELINE)
    return config if isinstance(config, dict) else dict(BASELINE)


def write_config(directory: Path, name: str, config: dict[str, Any]) -> None:
    path = config_path(directory, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(config), encoding="utf-8")
    tmp.replace(path)


@dataclass
class Fault:
    id: str
    kind: str
    until: float | None  # time.monotonic() deadline
    params: dict[str, Any]
    journal: bool
    stop: threading.Event = field(default_factory=threading.Event)
    blocks: list[bytes] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        left = None if self.until is None else round(max(0.0, self.until - time.monotonic()), 1)
        return {"id": self.id, "kind": self.kind, "remaining_s": left, "params": self.params}


class FaultError(ValueError):
    """A fault request the service cannot honour (answered 400)."""


#: Stack traces an ``exception`` fault logs: (type, message, function, line of code), one per service.
EXCEPTIONS = (
    ("KeyError", "'sku'", "get_item", "price = self.prices[item['sku']]"),
    ("AttributeError", "'NoneType' object has no attribute 'currency'", "render_total",
     "total = order.amount.currency"),
    ("TypeError", "unsupported operand type(s) for +: 'float' and 'NoneType'", "add_shipping",
     "total = subtotal + quote.shipping"),
    ("IndexError", "list index out of range", "first_row", "return rows[0]"),
    ("ValueError", "invalid literal for int() with base 10: ''", "parse_quantity", "qty = int(form['qty'])"),
)


def stack_trace(service: str, path: str) -> tuple[str, str]:
    """The exception (``Type: message``) and a Python-like stack trace for ``service``'s failing ``path``.

    >>> exc, trace = stack_trace("checkout", "/item")
    >>> trace.splitlines()[0], trace.splitlines()[-1] == exc
    ('Traceback (most recent call last):', True)
    """
    kind, message, func, code = EXCEPTIONS[sum(map(ord, service)) % len(EXCEPTIONS)]
    line = 40 + sum(map(ord, service + path)) % 400
    exc = f"{kind}: {message}"
    return exc, (f"Traceback (most recent call last):\n"
                 f'  File "/srv/{service}/app/server.py", line 118, in dispatch\n    return handler(request)\n'
                 f'  File "/srv/{service}/app/handlers.py", line {line}, in {func}\n    {code}\n{exc}')


def _caller_trace(service: str, path: str, why: str) -> tuple[str, str]:
    """A caller's stack trace for a dependency answer that does not validate (``why`` is ``Type: message``)."""
    line = 60 + sum(map(ord, service + path)) % 300
    return why, (f"Traceback (most recent call last):\n"
                 f'  File "/srv/{service}/app/server.py", line 118, in dispatch\n    return handler(request)\n'
                 f'  File "/srv/{service}/app/clients.py", line {line}, in check_prices\n'
                 f"    raise ValueError(f\"invalid price {{price!r}} for item {{item['id']}} from {{peer}}\")\n{why}")


def validate(dep: str, body: bytes) -> str | None:
    """Why a dependency's 200 answer is unusable (``None`` when it is fine): callers check every price.

    >>> validate("cache", b'{"items": [{"id": 1, "price": 2.5}]}') is None
    True
    >>> validate("cache", b'{"items": [{"id": 7, "price": -2.5}]}')
    'ValueError: invalid price -2.5 for item 7 from cache (expected a positive number)'
    """
    try:
        doc = json.loads(body)
        items = doc["items"]
        for item in items:
            price = item["price"]
            if not isinstance(price, int | float) or isinstance(price, bool) or price <= 0:
                return (f"ValueError: invalid price {price!r} for item {item.get('id')} from {dep} "
                        "(expected a positive number)")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"{type(exc).__name__}: malformed answer from {dep}: {exc}"
    return None


class Service:
    def __init__(self, name: str, port: int, deps: dict[str, list[str]], directory: Path,
                 capacity_bytes: int, telemetry: otel.Telemetry | None = None) -> None:
        self.name, self.port, self.directory = name, port, directory
        self.telemetry = telemetry or otel.setup(name, f"{name}:{port}", None)
        self.tracer: Tracer = self.telemetry.tracer
        self.deps = deps
        self.capacity = capacity_bytes
        self.data = data_dir(directory, name)
        self.data.mkdir(parents=True, exist_ok=True)
        (directory / "logs").mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self.faults: dict[str, Fault] = {}
        self.log_file = open(directory / "logs" / f"{name}.log", "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self.log_lock = threading.Lock()
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter("lab_requests", "Requests to GET /, by HTTP status", ["service", "status"],
                                registry=self.registry)
        self.duration = Histogram("lab_request_duration_seconds", "Time to answer GET /", ["service"],
                                  buckets=BUCKETS, registry=self.registry)
        self.dep_errors = Counter("lab_dependency_errors", "Failed calls to a dependency", ["service", "dependency"],
                                  registry=self.registry)
        used = Gauge("lab_disk_used_bytes", "Bytes in the service's data directory", ["service"],
                     registry=self.registry)
        used.labels(name).set_function(lambda: disk_used(self.data))
        Gauge("lab_disk_capacity_bytes", "Capacity of the service's data directory", ["service"],
              registry=self.registry).labels(name).set(capacity_bytes)
        self.version_info = Gauge("lab_config_version_info", "The running configuration version",
                                  ["service", "version"], registry=self.registry)
        for dep in deps:  # so the series exist (at 0) before the first failure
            self.dep_errors.labels(name, dep)
        self.config: dict[str, Any] = {}
        self.load_config()

    # -- logging and configuration ----------------------------------------------------------
    def log(self, level: str, message: str, **fields: Any) -> None:
        """One JSON line in ``logs/<name>.log``; the current span's ids when there is one."""
        record: dict[str, Any] = {"timestamp": now_iso(), "level": level, "service": self.name,
                                  "message": message, "instance": f"{HOST}:{self.port}"}
        context = get_current_span().get_span_context()
        if context.is_valid:
            record["trace_id"] = format(context.trace_id, "032x")
            record["span_id"] = format(context.span_id, "016x")
        record.update(fields)
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self.log_lock:
            self.log_file.write(line)
        if self.telemetry.logger is not None:  # the same line over OTLP (trace ids from the current span)
            self.telemetry.logger.log(LEVELS.get(level, logging.INFO), message,
                                      extra={f"lab.{k}": v for k, v in fields.items()})

    def note(self, message: str) -> None:
        """The lab's own bookkeeping (faults starting and ending) goes to the process's output
        (``logs/<name>.out``), not to the service's log: a real service does not log its faults, and
        the log is evidence for root-cause analysis."""
        print(f"{now_iso()} {self.name}:{self.port} {message}", flush=True)

    def load_config(self) -> None:
        config = read_config(self.directory, self.name)
        with self.lock:
            old = self.config.get("version")
            self.config = config
        version = str(config.get("version", "v1"))
        if old != version:
            if old is not None:
                with contextlib.suppress(KeyError):
                    self.version_info.remove(self.name, str(old))
                self.log("WARNING" if version != BASELINE["version"] else "INFO",
                         f"config reloaded: version {old} -> {version}")
            self.version_info.labels(self.name, version).set(1)

    def refresh_deps(self, stop: threading.Event) -> None:
        """Follow ``lab.json``: a dependency scaled out gets traffic on its new instances too."""
        path, seen = self.directory / "lab.json", 0.0
        while not stop.wait(1.0):
            try:
                mtime = path.stat().st_mtime
                if mtime == seen:
                    continue
                seen = mtime
                services = json.loads(path.read_text(encoding="utf-8"))["services"]
            except (OSError, ValueError, KeyError):
                continue
            for dep in self.deps:
                instances = services.get(dep, {}).get("instances") or []
                urls = [f"http://{HOST}:{int(i['port'])}" for i in instances if "port" in i]
                if urls:
                    self.deps[dep] = urls

    # -- the work ------------------------------------------------------------------------------
    def handle(self, path: str, headers: Any) -> tuple[int, dict[str, Any]]:
        """One request to a work path: the network first (``edge_delay`` holds a caller's request before
        this service sees it), then a server span around :meth:`serve` (parent from ``traceparent``)."""
        caller = str(headers.get(CALLER_HEADER) or "")
        with self.lock:
            edge = self.faults.get("edge_delay")
        if edge is not None and caller == edge.params["from"]:
            time.sleep(float(edge.params["delay_ms"]) / 1000.0 * _rng.uniform(0.95, 1.05))
        context = propagate.extract(headers)
        with self.tracer.start_as_current_span(
                f"GET {path}", context=context, kind=SpanKind.SERVER, record_exception=False,
                set_status_on_exception=False,
                attributes={"http.request.method": "GET", "url.path": path, "http.route": path,
                            "server.address": HOST, "server.port": self.port,
                            **({"lab.caller": caller} if caller else {})}) as span:
            code, body = self.serve(path)
            span.set_attribute("http.response.status_code", code)
            if code >= 500:
                span.set_status(Status(StatusCode.ERROR, str(body.get("error", code))))
        return code, body

    def call(self, dep: str, url: str, path: str) -> tuple[str, str]:
        """Call ``dep`` at ``url + path`` inside a client span; ``("ok"|"failed"|"invalid", why)``."""
        host, _, port = url.removeprefix("http://").partition(":")
        with self.tracer.start_as_current_span(
                f"GET {path}", kind=SpanKind.CLIENT, record_exception=False, set_status_on_exception=False,
                attributes={"http.request.method": "GET", "url.full": url + path, "server.address": host,
                            "server.port": int(port or 80), "peer.service": dep}) as span:
            headers = {CALLER_HEADER: self.name}
            propagate.inject(headers)
            started = time.perf_counter()
            try:
                status, body = request("GET", url + path, timeout=CALL_TIMEOUT, headers=headers)
            except (OSError, http.client.HTTPException) as exc:
                why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, why))
                self.log("ERROR", f"call to {dep} GET {path} failed: {why}", dependency=dep)
                return "failed", why
            took = time.perf_counter() - started
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
                self.log("ERROR", f"call to {dep} GET {path} answered {status} after {took * 1000:.1f}ms",
                         dependency=dep)
                return "failed", f"HTTP {status}"
            if took > SLOW_CALL_S:
                self.log("WARNING", f"slow call to {dep} GET {path}: {took * 1000:.0f}ms", dependency=dep)
            problem = validate(dep, body) if status == 200 else None
            return ("invalid", problem) if problem else ("ok", "")

    def serve(self, path: str = "/") -> tuple[int, dict[str, Any]]:
        started = time.perf_counter()
        with self.lock:
            hang = self.faults.get("hang")
            burst = self.faults.get("error_burst")
            outage = "dependency_outage" in self.faults
            raising = self.faults.get("exception")
            ratio = max(float(self.config.get("error_ratio", 0.0)),
                        float(burst.params["ratio"]) if burst else 0.0)
            wrong = float(self.config.get("wrong_value", 0.0))
        code, failed, invalid = 200, [], []
        for dep, urls in self.deps.items():
            outcome, why = self.call(dep, REFUSED_URL if outage else _rng.choice(urls), path)
            if outcome == "failed":
                self.dep_errors.labels(self.name, dep).inc()
                failed.append(dep)
                code = 502
            elif outcome == "invalid":
                invalid.append((dep, why))
        time.sleep(_rng.uniform(0.002, 0.006) if path == "/" else _rng.uniform(0.001, 0.003))  # own work
        if hang is not None:
            time.sleep(float(hang.params["delay_s"]) * _rng.uniform(0.9, 1.1))
        span = get_current_span()
        body: dict[str, Any]
        if code == 200 and invalid:
            code = 500
            dep, why = invalid[0]
            exc, trace = _caller_trace(self.name, path, why)
            self._record(span, exc, trace)
            self.log("ERROR", f"error handling GET {path}: {why}\n{trace}", exception=exc.split(":")[0],
                     dependency=dep)
            body = {"error": f"could not use the answer of {dep}"}
        elif code == 200 and raising is not None and path == raising.params["path"] \
                and _rng.random() < float(raising.params["ratio"]):
            code = 500
            exc, trace = stack_trace(self.name, path)
            self._record(span, exc, trace)
            self.log("ERROR", f"unhandled exception in GET {path}: {exc}\n{trace}", exception=exc.split(":")[0])
            body = {"error": "internal server error"}
        elif code == 200 and ratio > 0 and _rng.random() < ratio:
            code = 500
            body = {"error": "internal server error"}
        elif code == 502:
            body = {"error": f"dependency failed: {','.join(failed)}"}
        else:
            items = [{"id": _rng.randrange(1, 10_000), "price": round(_rng.uniform(1.0, 99.0), 2)}
                     for _ in range(3 if path == "/" else 1)]
            if wrong > 0 and _rng.random() < wrong:  # the wrong value: a 200 that looks fine here
                for item in items:
                    item["price"] = -item["price"]
            body = {"items": items}
        elapsed = time.perf_counter() - started
        self.requests.labels(self.name, str(code)).inc()
        self.duration.labels(self.name).observe(elapsed)
        why = f" failed deps: {','.join(failed)}" if failed else ""
        self.log("INFO" if code == 200 else "ERROR", f"GET {path} {code} {elapsed * 1000:.1f}ms{why}",
                 path=path, status=code, duration_ms=round(elapsed * 1000, 1))
        return code, {"service": self.name, "path": path, "status": code, **body}

    @staticmethod
    def _record(span: Any, exc: str, trace: str) -> None:
        if isinstance(span, NonRecordingSpan):
            return
        kind, _, message = exc.partition(": ")
        span.add_event("exception", {"exception.type": kind, "exception.message": message,
                                     "exception.stacktrace": trace})

    # -- faults ----------------------------------------------------------------------------------
    def start_fault(self, spec: dict[str, Any]) -> Fault:
        kind = str(spec.get("kind", ""))
        if kind not in IN_PROCESS:
            raise FaultError(f"unknown in-process fault {kind!r}; known: {', '.join(IN_PROCESS)}")
        duration = spec.get("duration_s")
        if duration is not None and (not isinstance(duration, int | float) or duration <= 0):
            raise FaultError("duration_s must be a positive number of seconds")
        params = _params(kind, spec)
        fault = Fault(str(spec.get("id") or f"local-{kind}"), kind,
                      None if duration is None else time.monotonic() + float(duration), params,
                      bool(spec.get("journal", False)))
        self.end_fault(kind, "replaced")
        with self.lock:
            self.faults[kind] = fault
        runner: Callable[[Fault], None] | None = {
            "cpu_hog": self._burn, "memory_leak": self._leak, "disk_fill": self._fill}.get(kind)
        if runner is not None:
            for _ in range(int(params.get("threads", 1))):
                threading.Thread(target=runner, args=(fault,), name=f"fault-{kind}", daemon=True).start()
        if kind in CONFIG_FAULTS:
            self.load_config()
        self.note(f"fault started: {kind} id={fault.id} params={json.dumps(params)} duration_s={duration}")
        return fault

    def end_fault(self, kind: str, why: str) -> Fault | None:
        with self.lock:
            fault = self.faults.pop(kind, None)
        if fault is None:
            return None
        fault.stop.set()
        fault.blocks.clear()
        if kind in CONFIG_FAULTS:
            self.load_config()
        self.note(f"fault ended: {kind} id={fault.id} ({why})")
        return fault

    def expire(self, stop: threading.Event) -> None:
        while not stop.wait(0.2):
            now = time.monotonic()
            with self.lock:
                due = [f for f in self.faults.values() if f.until is not None and f.until <= now]
            for fault in due:
                if fault.kind == "disk_fill":
                    fault.stop.set()
                    time.sleep(0.05)
                    for path in self.data.glob("fill-*.bin"):
                        path.unlink(missing_ok=True)
                if fault.kind in CONFIG_FAULTS and fault.journal:
                    old = read_config(self.directory, self.name).get("version", "v2")
                    write_config(self.directory, self.name, dict(BASELINE))
                    append_line(self.directory / "changes.jsonl", {
                        "at": now_iso(), "service": self.name, "kind": "rollback", "from_version": str(old),
                        "to_version": BASELINE["version"]})
                self.end_fault(fault.kind, "expired")
                if fault.journal:
                    append_line(self.directory / "faults.jsonl",
                                {"id": fault.id, "ended_at": now_iso(), "ended_by": "expiry"})

    def _burn(self, fault: Fault) -> None:
        block = b"\x5a" * (256 * 1024)
        while not fault.stop.is_set():
            hashlib.sha256(block).digest()  # releases the GIL: a real core, not a frozen service

    def _leak(self, fault: Fault) -> None:
        rate = float(fault.params["rate_mb_s"])
        cap = int(float(fault.params["max_mb"]))
        while not fault.stop.is_set() and len(fault.blocks) < cap:
            fault.blocks.append(bytes([_rng.randrange(1, 255)]) * MB)  # written, so resident
            fault.stop.wait(1.0 / rate)

    def _fill(self, fault: Fault) -> None:
        target = float(fault.params["target_ratio"]) * self.capacity
        chunk = max(64 * 1024, min(MB, self.capacity // 20))
        pause = chunk / (float(fault.params["rate_mb_s"]) * MB)
        n = 0
        while not fault.stop.is_set() and disk_used(self.data) < target:
            size = int(min(chunk, target - disk_used(self.data) + 1))
            (self.data / f"fill-{os.getpid()}-{n}.bin").write_bytes(b"\xa5" * size)
            n += 1
            fault.stop.wait(pause)

    def active(self) -> list[dict[str, Any]]:
        with self.lock:
            return [f.view() for f in self.faults.values()]


def _params(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    defaults: dict[str, dict[str, float]] = {
        "hang": {"delay_s": 2.0}, "error_burst": {"ratio": 0.5}, "cpu_hog": {"threads": 1},
        "memory_leak": {"rate_mb_s": 4.0, "max_mb": 280.0}, "disk_fill": {"rate_mb_s": 10.0, "target_ratio": 0.96},
        "exception": {"ratio": 1.0}, "wrong_value": {"ratio": 1.0}, "edge_delay": {"delay_ms": 300.0},
    }
    limits = {"delay_s": (0.0, 10.0), "ratio": (0.0, 1.0), "threads": (1, 2), "rate_mb_s": (0.1, 50.0),
              "max_mb": (1.0, 300.0), "target_ratio": (0.5, 0.99), "delay_ms": (1.0, 5000.0)}
    out: dict[str, Any] = {}
    if kind == "exception":
        path = spec.get("path", "/item")
        if path not in PATHS:
            raise FaultError(f"exception: path must be one of {', '.join(PATHS)}, not {path!r}")
        out["path"] = path
    if kind == "edge_delay":
        caller = spec.get("from")
        if not isinstance(caller, str) or not caller:
            raise FaultError("edge_delay: 'from' must name the calling service whose calls are delayed")
        out["from"] = caller
    for key, default in defaults.get(kind, {}).items():
        value = spec.get(key, default)
        lo, hi = limits[key]
        if not isinstance(value, int | float) or not lo <= value <= hi:
            raise FaultError(f"{kind}: {key} must be a number in [{lo}, {hi}], not {value!r}")
        out[key] = value
    return out


def handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, code: int, body: bytes | dict[str, Any] | list[Any],
                   ctype: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path in PATHS:
                code, body = service.handle(path, self.headers)
                self._reply(code, body)
            elif path == "/healthz":
                self._reply(200, {"service": service.name, "port": service.port, "pid": os.getpid(),
                                  "version": str(service.config.get("version", "v1")),
                                  "faults": [f["kind"] for f in service.active()]})
            elif path == "/metrics":
                self._reply(200, generate_latest(service.registry), CONTENT_TYPE_LATEST)
            elif path == "/admin/fault":
                self._reply(200, service.active())
            else:
                self._reply(404, {"error": f"no route {path}"})

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/admin/fault":
                self._reply(404, {"error": "no route"})
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
                spec = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(spec, dict):
                    raise FaultError("the body must be a JSON object")
                fault = service.start_fault(spec)
            except (ValueError, TypeError) as exc:
                self._reply(400, {"error": str(exc)})
                return
            self._reply(200, fault.view())

        def do_DELETE(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/admin/fault":
                self._reply(404, {"error": "no route"})
                return
            kinds = parse_qs(parts.query).get("kind") or [f["kind"] for f in service.active()]
            ended = [k for k in kinds if service.end_fault(k, "cleared") is not None]
            service.load_config()  # a rollback rewrote it, maybe after a restart that already read it
            self._reply(200, {"ended": ended})

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def parse_deps(specs: list[str]) -> dict[str, list[str]]:
    """``["a=http://h:1,http://h:2"]`` → ``{"a": ["http://h:1", "http://h:2"]}``.

    >>> parse_deps(["cache=http://127.0.0.1:9001,http://127.0.0.1:9002", "store=http://127.0.0.1:9003"])
    {'cache': ['http://127.0.0.1:9001', 'http://127.0.0.1:9002'], 'store': ['http://127.0.0.1:9003']}
    """
    deps: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, urls = spec.partition("=")
        if not sep or not name:
            raise ValueError(f"--deps takes NAME=URL[,URL...], not {spec!r}")
        deps[name] = [u.rstrip("/") for u in urls.split(",") if u]
    return deps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="One Watchkeeper lab service (binds to 127.0.0.1).")
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deps", nargs="*", default=[], help="NAME=URL[,URL...]")
    parser.add_argument("--dir", type=Path, required=True, help="the lab's state directory")
    parser.add_argument("--capacity-mb", type=float, default=50.0, help="capacity of the data directory")
    parser.add_argument("--otlp-endpoint", default=None,
                        help=f"export spans over OTLP/HTTP to this base URL (default: ${otel.ENV_ENDPOINT}; "
                             "neither: no export)")
    parser.add_argument("--no-otlp-logs", dest="otlp_logs", action="store_false",
                        help="export spans only (the log lines stay in logs/<name>.log)")
    args = parser.parse_args(argv)
    telemetry = otel.setup(args.name, f"{args.name}:{args.port}", otel.endpoint_from(args.otlp_endpoint),
                           logs=args.otlp_logs)
    service = Service(args.name, args.port, parse_deps(args.deps), args.dir, int(args.capacity_mb * MB), telemetry)
    server = ThreadingHTTPServer((HOST, args.port), handler(service))
    server.daemon_threads = True
    stop = threading.Event()
    for target in (service.expire, service.refresh_deps):
        threading.Thread(target=target, args=(stop,), daemon=True).start()

    def on_term(signum: int, _frame: object) -> None:
        service.log("INFO", f"stopping on signal {signum}")
        flusher = threading.Thread(target=telemetry.flush, args=(1000,), daemon=True)
        flusher.start()  # the spans of the last second, if a collector takes them quickly
        flusher.join(1.5)
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    service.log("INFO", f"listening on {HOST}:{args.port} version={service.config.get('version')} "
                        f"deps={','.join(service.deps) or '-'} pid={os.getpid()}")
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        stop.set()
        server.server_close()


if __name__ == "__main__":
    main()
