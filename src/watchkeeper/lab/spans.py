"""A small OTLP/HTTP trace receiver for recorded lab campaigns (``watchkeeper lab record``): the lab's
services export to it and it appends every span as one JSON line,

``{"trace_id", "span_id", "parent_id", "service", "operation", "start", "duration", "error", "kind"}``

(hex ids, ``parent_id`` null for a root, ``start`` in unix seconds, ``duration`` in seconds, ``error``
from status ERROR or an HTTP status ≥ 500, ``kind`` server|client|internal|producer|consumer) plus
``status_code`` (the HTTP status when the span has one) and ``peer`` (a client span's
``peer.service``). Protobuf bodies (``application/x-protobuf``, gzip or not: what the OpenTelemetry
SDK's OTLP/HTTP exporter sends; JSON is answered 415); binds to 127.0.0.1. It is the campaign
recorder, not Watchkeeper's ingestion (that is ``POST /v1/traces`` of ``watchkeeper serve``).
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from watchkeeper.lab.net import HOST

KINDS = {PbSpan.SPAN_KIND_SERVER: "server", PbSpan.SPAN_KIND_CLIENT: "client",
         PbSpan.SPAN_KIND_INTERNAL: "internal", PbSpan.SPAN_KIND_PRODUCER: "producer",
         PbSpan.SPAN_KIND_CONSUMER: "consumer"}
MAX_BODY = 16 * 1024 * 1024


def _value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    return getattr(v, which) if which in ("string_value", "int_value", "double_value", "bool_value") else None


def records(request: ExportTraceServiceRequest) -> Iterator[dict[str, Any]]:
    """The spans of one OTLP export request as campaign records."""
    for rs in request.resource_spans:
        resource = {a.key: _value(a.value) for a in rs.resource.attributes}
        service = str(resource.get("service.name") or "unknown")
        for ss in rs.scope_spans:
            for span in ss.spans:
                attrs = {a.key: _value(a.value) for a in span.attributes}
                status_code = attrs.get("http.response.status_code", attrs.get("http.status_code"))
                error = span.status.code == Status.STATUS_CODE_ERROR or (
                    isinstance(status_code, int) and status_code >= 500)
                yield {
                    "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                    "parent_id": span.parent_span_id.hex() or None, "service": service,
                    "operation": span.name, "start": span.start_time_unix_nano / 1e9,
                    "duration": max(0, span.end_time_unix_nano - span.start_time_unix_nano) / 1e9,
                    "error": bool(error), "kind": KINDS.get(span.kind, "internal"),
                    "status_code": status_code if isinstance(status_code, int) else None,
                    "peer": attrs.get("peer.service"),
                }


def decode(body: bytes, encoding: str = "") -> ExportTraceServiceRequest:
    """An OTLP/HTTP traces body → the request message (``ValueError`` on anything else)."""
    if encoding.strip().lower() == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise ValueError(f"not gzip: {exc}") from exc
    message = ExportTraceServiceRequest()
    try:
        message.ParseFromString(body)
    except Exception as exc:  # protobuf raises its own DecodeError
        raise ValueError(f"not an OTLP traces request: {exc}") from exc
    return message


class SpanSink:
    """An OTLP/HTTP traces receiver on 127.0.0.1 that hands each span record to ``on_span`` and, when
    given ``out``, appends it to that JSON-lines file. ``url`` is the base endpoint for the exporters.
``POST /v1/logs`` is answered 200 and dropped (counted in ``log_requests``).

    >>> sink = SpanSink().start()
    >>> sink.url.startswith("http://127.0.0.1:")
    True
    >>> sink.stop()
    """

    def __init__(self, out: Path | None = None, on_span: Callable[[dict[str, Any]], None] | None = None,
                 port: int = 0) -> None:
        self.out = out
        self.on_span = on_span
        self.received = 0
        self.rejected = 0
        self.log_requests = 0
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        self._server = ThreadingHTTPServer((HOST, port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="otlp-span-sink", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def start(self) -> SpanSink:
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.out.open("a", encoding="utf-8")
        self._thread.start()
        return self

    def take(self, spans: Iterable[dict[str, Any]]) -> None:
        with self._lock:
            for span in spans:
                self.received += 1
                if self._file is not None:
                    self._file.write(json.dumps(span, separators=(",", ":")) + "\n")
                if self.on_span is not None:
                    self.on_span(span)
            if self._file is not None:
                self._file.flush()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def _handler(sink: SpanSink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _reply(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            path = self.path.split("?")[0]
            if path not in ("/v1/traces", "/v1/logs"):
                self._reply(404, b'{"error": "only POST /v1/traces (and /v1/logs, taken and dropped)"}',
                            "application/json")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 <= length <= MAX_BODY:
                sink.rejected += 1
                self._reply(413, b'{"error": "body too large"}', "application/json")
                return
            ctype = self.headers.get("Content-Type", "application/x-protobuf")
            if path == "/v1/logs":  # a campaign keeps the services' JSON log files instead
                self.rfile.read(length)
                sink.log_requests += 1
                self._reply(200, b"{}" if ctype.startswith("application/json") else b"", ctype)
                return
            if ctype.split(";")[0].strip().lower() != "application/x-protobuf":
                self.rfile.read(length)
                sink.rejected += 1
                self._reply(415, b'{"error": "OTLP/HTTP protobuf only (application/x-protobuf)"}', "application/json")
                return
            try:
                message = decode(self.rfile.read(length), self.headers.get("Content-Encoding", ""))
            except ValueError as exc:
                sink.rejected += 1
                self._reply(400, json.dumps({"error": str(exc)}).encode(), "application/json")
                return
            sink.take(records(message))
            self._reply(200, ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf")

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def read_spans(path: Path) -> list[dict[str, Any]]:
    """A campaign's ``spans.jsonl`` (skipping lines that are not JSON objects)."""
    out: list[dict[str, Any]] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, Mapping):
                out.append(dict(doc))
    return out
