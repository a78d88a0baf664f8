"""The lab services' OpenTelemetry: a tracer per service process (``service.name`` = the lab service)
and, when an OTLP endpoint is given, an OTLP/HTTP span exporter behind a ``BatchSpanProcessor`` and
an OTLP/HTTP log exporter behind a ``BatchLogRecordProcessor`` (the same lines the service writes to
its JSON log, with severity, attributes and the span's ids).

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
from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass(slots=True)
class Telemetry:
    """What :func:`setup` made: the tracer, and the OTLP log sink when exporting (``None`` otherwise)."""

    tracer: Tracer
    provider: TracerProvider
    logger: logging.Logger | None = None
    flushers: list[Callable[[int], Any]] = field(default_factory=list)

    def flush(self, timeout_ms: int = 1000) -> None:
        for flush in self.flushers:
            flush(timeout_ms)


def setup(service: str, instance: str, endpoint: str | None, logs: bool = True) -> Telemetry:
    """The process's tracer (and OTLP log sink). ``endpoint`` is the collector's base URL
    (``http://127.0.0.1:4318``; ``/v1/traces`` and ``/v1/logs`` are appended), or ``None`` for no
    export. Headers (authentication) come from ``OTEL_EXPORTER_OTLP_HEADERS``."""
    resource = Resource.create({
        "service.name": service, "service.instance.id": instance, "service.namespace": "watchkeeper-lab"})
    provider = TracerProvider(resource=resource)
    telemetry = Telemetry(provider.get_tracer("watchkeeper.lab"), provider)
    if endpoint:
        import requests
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        quiet_exporter_logs()

        def session() -> requests.Session:
            s = requests.Session()
            s.trust_env = False  # everything is on 127.0.0.1: no proxy, ever
            return s

        exporter = OTLPSpanExporter(endpoint=signal_url(endpoint, "traces"), timeout=EXPORT_TIMEOUT,
                                    session=session())
        provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=MAX_QUEUE,
                                                       schedule_delay_millis=1000, max_export_batch_size=512))
        telemetry.flushers.append(provider.force_flush)
        if logs:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
            from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

            log_provider = LoggerProvider(resource=resource)
            log_provider.add_log_record_processor(BatchLogRecordProcessor(
                OTLPLogExporter(endpoint=signal_url(endpoint, "logs"), timeout=EXPORT_TIMEOUT, session=session()),
                max_queue_size=MAX_QUEUE, schedule_delay_millis=1000, max_export_batch_size=512))
            logger = logging.getLogger(f"watchkeeper.lab.otlp.{service}")
            logger.handlers[:] = [LoggingHandler(level=logging.INFO, logger_provider=log_provider)]
            logger.propagate = False
            logger.setLevel(logging.INFO)
            telemetry.logger = logger
            telemetry.flushers.append(log_provider.force_flush)
    return telemetry


def signal_url(endpoint: str, signal: str) -> str:
    """The OTLP/HTTP URL of ``signal`` (traces, logs) for a base endpoint.

    >>> signal_url("http://127.0.0.1:4318/", "traces"), signal_url("http://h:1", "logs")
    ('http://127.0.0.1:4318/v1/traces', 'http://h:1/v1/logs')
    """
    return f"{endpoint.rstrip('/')}/v1/{signal}"


def endpoint_from(option: str | None, env: dict[str, Any] | None = None) -> str | None:
    """The option, else ``OTEL_EXPORTER_OTLP_ENDPOINT``, else ``None`` (export off)."""
    value = option or (env if env is not None else os.environ).get(ENV_ENDPOINT) or None
    return str(value) if value else None
