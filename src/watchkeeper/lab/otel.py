"""The lab services' OpenTelemetry: a tracer per service process (``service.name`` = the lab service)
and, when an OTLP endpoint is given, an OTLP/HTTP span exporter behind a ``BatchSpanProcessor``.

Without an endpoint the services still trace (so their JSON log lines carry trace and span ids) but
nothing is exported. With one, export runs on the processor's own thread: a dead or slow collector
never slows a request (spans wait in a bounded queue and are dropped when it is full), each export
gives up after ``EXPORT_TIMEOUT`` seconds, no proxy is consulted, and the exporter's complaints are
rate-limited to one line per minute in the process's ``.out`` file.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any
from urllib.parse import quote

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer

#: Seconds an export may take before the batch is given up.
EXPORT_TIMEOUT = 2.0
#: Spans waiting for export; beyond it new spans are dropped (bounded memory when nobody listens).
MAX_QUEUE = 4096
ENV_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENV_HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"


class RateLimit(logging.Filter):
    """Let one record through per ``every`` seconds (per logger name); count the rest and say how
    many were held back in the next one that passes.

    >>> f = RateLimit(60.0)
    >>> r = logging.LogRecord("x", logging.WARNING, "", 0, "export failed", None, None)
    >>> f.filter(r), f.filter(r), f.suppressed["x"]
    (True, False, 1)
    """

    def __init__(self, every: float = 60.0) -> None:
        super().__init__()
        self.every = every
        self.last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self.last.get(record.name)
            if last is not None and now - last < self.every:
                self.suppressed[record.name] = self.suppressed.get(record.name, 0) + 1
                return False
            self.last[record.name] = now
            held = self.suppressed.pop(record.name, 0)
        if held:
            record.msg = f"{record.msg} ({held} similar messages suppressed)"
        return True


def quiet_exporter_logs(every: float = 60.0) -> None:
    """Route OpenTelemetry's own log records through a :class:`RateLimit` (a dead collector would
    otherwise log a retry warning for every batch)."""
    handler = logging.StreamHandler()
    handler.addFilter(RateLimit(every))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    otel = logging.getLogger("opentelemetry")
    otel.handlers[:] = [handler]
    otel.propagate = False
    otel.setLevel(logging.WARNING)


def auth_headers(token: str) -> str:
    """``OTEL_EXPORTER_OTLP_HEADERS`` for a bearer token (values URL-encoded, as the spec says).

    >>> auth_headers("abc def")
    'Authorization=Bearer%20abc%20def'
    """
    return f"Authorization={quote('Bearer ' + token)}"


def setup(service: str, instance: str, endpoint: str | None) -> tuple[TracerProvider, Tracer]:
    """The process's tracer provider and tracer. ``endpoint`` is the collector's base URL
    (``http://127.0.0.1:4318``; ``/v1/traces`` is appended), or ``None`` for no export. Headers
    (authentication) come from ``OTEL_EXPORTER_OTLP_HEADERS``."""
    provider = TracerProvider(resource=Resource.create({
        "service.name": service, "service.instance.id": instance, "service.namespace": "watchkeeper-lab"}))
    if endpoint:
        import requests
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        quiet_exporter_logs()
        session = requests.Session()
        session.trust_env = False  # everything is on 127.0.0.1: no proxy, ever
        exporter = OTLPSpanExporter(endpoint=traces_url(endpoint), timeout=EXPORT_TIMEOUT, session=session)
        provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=MAX_QUEUE,
                                                       schedule_delay_millis=1000, max_export_batch_size=512))
    return provider, provider.get_tracer("watchkeeper.lab")


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL for a base endpoint (a URL already ending in ``/v1/traces`` is kept).

    >>> traces_url("http://127.0.0.1:4318/"), traces_url("http://h:1/v1/traces")
    ('http://127.0.0.1:4318/v1/traces', 'http://h:1/v1/traces')
    """
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else base + "/v1/traces"


def endpoint_from(option: str | None, env: dict[str, Any] | None = None) -> str | None:
    """The option, else ``OTEL_EXPORTER_OTLP_ENDPOINT``, else ``None`` (export off)."""
    value = option or (env if env is not None else os.environ).get(ENV_ENDPOINT) or None
    return str(value) if value else None
