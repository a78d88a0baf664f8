"""OTLP/HTTP traces in: an ``ExportTraceServiceRequest`` (protobuf or the OTLP JSON mapping) → spans.

Pure: bytes in, :class:`Decoded` out. The service of a span is its resource's ``service.name``
(``unknown_service`` when the resource has none, as the OpenTelemetry SDKs say); a span is an error
when its status code is ERROR or its ``http.status_code`` / ``http.response.status_code`` attribute
is 500 or more. A span that cannot be used (ids of the wrong length or all zero, no start time, an
end before its start, a service or operation name too long to store) is rejected alone and counted:
the export answers with OTLP's ``partial_success`` (rejected spans and the first reasons). A body that
is not an export request at all is an :class:`~watchkeeper.errors.InputError` (400).

JSON follows the OTLP/JSON mapping: ids as hex strings, 64-bit integers as decimal strings (numbers
taken too), enums as integers (their names taken too), lowerCamelCase field names.

>>> body = b'''{"resourceSpans": [{"resource": {"attributes": [
...   {"key": "service.name", "value": {"stringValue": "checkout"}}]},
...   "scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c",
...   "spanId": "eee19b7ec3c1b174", "name": "GET /cart", "kind": 2,
...   "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000250000000",
...   "status": {"code": 2}}]}]}]}'''
>>> d = decode(body, "application/json")
>>> s = d.spans[0]
>>> (s.service, s.operation, s.kind, s.start, s.duration, s.error, s.parent_id, d.rejected)
('checkout', 'GET /cart', 'server', 1700000000.0, 0.25, True, None, 0)
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from watchkeeper.errors import InputError
from watchkeeper.traces.spans import Span

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: Longest service or operation name kept (the storage columns' width).
MAX_NAME = 256
#: Reasons named in ``partial_success.error_message`` (the count covers them all).
MAX_REASONS = 3
#: Service of a resource without ``service.name`` (the SDKs' default).
UNKNOWN_SERVICE = "unknown_service"
#: OTLP's span kinds by number and by name → ``Span.kind``.
KINDS: Mapping[Any, str] = {
    0: "internal", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer",
    "SPAN_KIND_UNSPECIFIED": "internal", "SPAN_KIND_INTERNAL": "internal", "SPAN_KIND_SERVER": "server",
    "SPAN_KIND_CLIENT": "client", "SPAN_KIND_PRODUCER": "producer", "SPAN_KIND_CONSUMER": "consumer",
}
STATUS_ERROR = 2
HTTP_STATUS_KEYS = frozenset({"http.status_code", "http.response.status_code"})
#: The service a client span calls, when the instrumentation names it (``Span.peer``: a crashed callee
#: that answers nothing is still blamed for its callers' unanswered calls).
PEER_KEY = "peer.service"
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(slots=True)
class Decoded:
    """The usable spans of one export request, and how many were rejected (with the first reasons)."""

    spans: list[Span] = field(default_factory=list)
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < MAX_REASONS and reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def message(self) -> str:
        return "; ".join(self.reasons)

    def response_json(self) -> dict[str, Any]:
        """The ``ExportTraceServiceResponse`` in OTLP/JSON (``partial_success`` only when something was rejected)."""
        if not self.rejected:
            return {}
        return {"partialSuccess": {"rejectedSpans": str(self.rejected), "errorMessage": self.message}}

    def response_protobuf(self) -> bytes:
        response = ExportTraceServiceResponse()
        if self.rejected:
            response.partial_success.CopyFrom(
                ExportTracePartialSuccess(rejected_spans=self.rejected, error_message=self.message))
        return bytes(response.SerializeToString())


def media_of(content_type: str | None) -> str:
    """``application/x-protobuf`` or ``application/json`` from a Content-Type header; 415 otherwise.

    >>> media_of("application/json; charset=utf-8"), media_of("application/protobuf")
    ('application/json', 'application/x-protobuf')
    """
    media = (content_type or "").split(";")[0].strip().lower()
    if media in (PROTOBUF, "application/protobuf"):
        return PROTOBUF
    if media == JSON or media.endswith("+json"):
        return JSON
    raise InputError(f"unsupported content type {media or 'none'!r}; OTLP/HTTP sends {PROTOBUF} or {JSON}",
                     status=415)


def inflate(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The body without its ``Content-Encoding`` (gzip or deflate), at most ``limit`` bytes once
    inflated (413 beyond: a small bomb cannot fill the memory); 415 for another encoding."""
    coding = (encoding or "identity").strip().lower()
    if coding in ("identity", ""):
        return body
    if coding not in ("gzip", "x-gzip", "deflate"):
        raise InputError(f"unsupported content encoding {coding!r}; send gzip or none", status=415)
    wbits = 16 + zlib.MAX_WBITS if coding != "deflate" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InputError(f"the body is not valid {coding}: {exc}", status=400) from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise InputError(f"the body inflates to more than the limit of {limit} bytes", status=413)
    if not inflater.eof:
        raise InputError(f"the {coding} body is cut off", status=400)
    return out


def decode(body: bytes, content_type: str | None) -> Decoded:
    """Decode an (inflated) export request of the given Content-Type."""
    if media_of(content_type) == PROTOBUF:
        return decode_protobuf(body)
    return decode_json(body)


# -- protobuf --------------------------------------------------------------------------------------
def encode(spans: Iterable[Span]) -> bytes:
    """An ``ExportTraceServiceRequest`` (protobuf) holding ``spans``, one resource per service: what
    an exporter sends (for tests, benchmarks and replaying stored spans).

    >>> s = Span("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", None, "api", "GET /", 1.5, 0.25, True,
    ...          "server")
    >>> decode_protobuf(encode([s])).spans == [s]
    True
    """
    request = ExportTraceServiceRequest()
    by_service: dict[str, Any] = {}
    kinds = {"internal": 1, "server": 2, "client": 3, "producer": 4, "consumer": 5}
    for s in spans:
        scope = by_service.get(s.service)
        if scope is None:
            resource_spans = request.resource_spans.add()
            attr = resource_spans.resource.attributes.add()
            attr.key, attr.value.string_value = "service.name", s.service
            scope = by_service[s.service] = resource_spans.scope_spans.add()
        out = scope.spans.add()
        out.trace_id, out.span_id = bytes.fromhex(s.trace_id), bytes.fromhex(s.span_id)
        if s.parent_id:
            out.parent_span_id = bytes.fromhex(s.parent_id)
        out.name, out.kind = s.operation, kinds.get(s.kind, 1)
        out.start_time_unix_nano = round(s.start * 1e9)
        out.end_time_unix_nano = out.start_time_unix_nano + round(s.duration * 1e9)
        if s.error:
            out.status.code = STATUS_ERROR
        if s.peer:
            peer = out.attributes.add()
            peer.key, peer.value.string_value = PEER_KEY, s.peer
    return bytes(request.SerializeToString())


def decode_protobuf(body: bytes) -> Decoded:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError) as exc:
        raise InputError(f"the body is not an OTLP ExportTraceServiceRequest (protobuf): {exc}",
                         status=400) from None
    out = Decoded()
    append = out.spans.append
    for resource_spans in request.resource_spans:
        service = UNKNOWN_SERVICE
        for attr in resource_spans.resource.attributes:
            if attr.key == "service.name" and attr.value.WhichOneof("value") == "string_value":
                service = attr.value.string_value or UNKNOWN_SERVICE
                break
        if len(service) > MAX_NAME:
            for scope in resource_spans.scope_spans:
                for _ in scope.spans:
                    out.reject(f"service.name longer than {MAX_NAME} characters")
            continue
        for scope in resource_spans.scope_spans:
            for s in scope.spans:
                trace_id, span_id, parent = s.trace_id, s.span_id, s.parent_span_id
                if len(trace_id) != 16 or not any(trace_id):
                    out.reject("a trace id is not 16 bytes, or all zero")
                    continue
                if len(span_id) != 8 or not any(span_id):
                    out.reject("a span id is not 8 bytes, or all zero")
                    continue
                if parent and (len(parent) != 8 or not any(parent)):
                    out.reject("a parent span id is not 8 bytes, or all zero")
                    continue
                start, end = s.start_time_unix_nano, s.end_time_unix_nano
                if start == 0 or end < start:
                    out.reject("a span has no start time, or ends before it starts")
                    continue
                name = s.name
                if len(name) > MAX_NAME:
                    name = name[:MAX_NAME]
                error = s.status.code == STATUS_ERROR or _http_error_pb(s.attributes)
                kind = KINDS.get(s.kind, "internal")
                append(Span(trace_id.hex(), span_id.hex(), parent.hex() if parent else None, service, name,
                            start / 1e9, (end - start) / 1e9, error, kind,
                            _peer_pb(s.attributes) if kind == "client" else None))
    return out


def _peer_pb(attributes: Iterable[Any]) -> str | None:
    for attr in attributes:
        if attr.key == PEER_KEY and attr.value.WhichOneof("value") == "string_value":
            peer = attr.value.string_value
            return peer if 0 < len(peer) <= MAX_NAME else None
    return None


def _http_error_pb(attributes: Iterable[Any]) -> bool:
    for attr in attributes:
        if attr.key in HTTP_STATUS_KEYS:
            value = attr.value
            which = value.WhichOneof("value")
            if which == "int_value":
                return bool(value.int_value >= 500)
            if which == "string_value":
                return value.string_value.isdigit() and int(value.string_value) >= 500
    return False


# -- JSON ------------------------------------------------------------------------------------------
def decode_json(body: bytes) -> Decoded:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc}", status=400) from None
    if not isinstance(doc, dict):
        raise InputError("the body is not an OTLP ExportTraceServiceRequest: a JSON object with "
                         "'resourceSpans' was expected", status=400)
    out = Decoded()
    for i, resource_spans in enumerate(_list(doc, "resourceSpans", "resource_spans", where="the body")):
        where = f"resourceSpans[{i}]"
        if not isinstance(resource_spans, dict):
            raise InputError(f"{where} is not an object", status=400)
        resource = resource_spans.get("resource")
        resource = {} if resource is None else resource
        if not isinstance(resource, dict):
            raise InputError(f"{where}.resource is not an object", status=400)
        service = _service_json(resource, where)
        for j, scope in enumerate(_list(resource_spans, "scopeSpans", "scope_spans", where=where)):
            if not isinstance(scope, dict):
                raise InputError(f"{where}.scopeSpans[{j}] is not an object", status=400)
            for k, s in enumerate(_list(scope, "spans", "spans", where=f"{where}.scopeSpans[{j}]")):
                if not isinstance(s, dict):
                    raise InputError(f"{where}.scopeSpans[{j}].spans[{k}] is not an object", status=400)
                problem = _span_json(s, service, out.spans)
                if problem is not None:
                    out.reject(problem)
    return out


def _list(doc: Mapping[str, Any], camel: str, snake: str, *, where: str) -> list[Any]:
    value = doc.get(camel, doc.get(snake))
    if value is None:
        return []
    if not isinstance(value, list):
        raise InputError(f"{where}: '{camel}' is not a list", status=400)
    return value


def _service_json(resource: Mapping[str, Any], where: str) -> str | None:
    attributes = resource.get("attributes")
    attributes = [] if attributes is None else attributes
    if not isinstance(attributes, list) or not all(isinstance(a, dict) for a in attributes):
        raise InputError(f"{where}.resource.attributes is not a list of objects", status=400)
    for attr in attributes:
        if isinstance(attr, dict) and attr.get("key") == "service.name":
            value = attr.get("value")
            name = value.get("stringValue", value.get("string_value")) if isinstance(value, dict) else None
            if isinstance(name, str) and name:
                return name if len(name) <= MAX_NAME else None
            break
    return UNKNOWN_SERVICE


def _hex_id(value: Any, size: int) -> str | None:
    """A lower-case hex id of ``size`` hex digits, or None when it is not one (or all zero)."""
    if not isinstance(value, str) or len(value) != size or not _HEX.issuperset(value):
        return None
    value = value.lower()
    return None if value == "0" * size else value


def _nanos(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 2**64 else None
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        n = int(value)
        return n if n < 2**64 else None
    return None


def _span_json(s: Mapping[str, Any], service: str | None, into: list[Span]) -> str | None:
    """Append the span to ``into``; the reason it cannot be used, or None."""
    if service is None:
        return f"service.name longer than {MAX_NAME} characters"
    trace_id = _hex_id(s.get("traceId", s.get("trace_id")), 32)
    if trace_id is None:
        return "a trace id is not 32 hex digits, or all zero"
    span_id = _hex_id(s.get("spanId", s.get("span_id")), 16)
    if span_id is None:
        return "a span id is not 16 hex digits, or all zero"
    parent_raw = s.get("parentSpanId", s.get("parent_span_id"))
    parent = None
    if parent_raw not in (None, ""):
        parent = _hex_id(parent_raw, 16)
        if parent is None:
            return "a parent span id is not 16 hex digits, or all zero"
    start = _nanos(s.get("startTimeUnixNano", s.get("start_time_unix_nano")))
    end = _nanos(s.get("endTimeUnixNano", s.get("end_time_unix_nano")))
    if not start or end is None or end < start:
        return "a span has no start time, or ends before it starts"
    name = s.get("name", "")
    if not isinstance(name, str):
        return "a span's name is not a string"
    kind = KINDS.get(s.get("kind", 0))
    if kind is None:
        return "a span's kind is not an OTLP span kind"
    status = s.get("status") or {}
    code = status.get("code", 0) if isinstance(status, dict) else None
    error = code in (STATUS_ERROR, "STATUS_CODE_ERROR") or _http_error_json(s.get("attributes"))
    peer = _peer_json(s.get("attributes")) if kind == "client" else None
    into.append(Span(trace_id, span_id, parent, service, name[:MAX_NAME], start / 1e9, (end - start) / 1e9,
                     error, kind, peer))
    return None


def _peer_json(attributes: Any) -> str | None:
    if not isinstance(attributes, list):
        return None
    for attr in attributes:
        if isinstance(attr, dict) and attr.get("key") == PEER_KEY:
            value = attr.get("value")
            peer = value.get("stringValue", value.get("string_value")) if isinstance(value, dict) else None
            return peer if isinstance(peer, str) and 0 < len(peer) <= MAX_NAME else None
    return None


def _http_error_json(attributes: Any) -> bool:
    if not isinstance(attributes, list):
        return False
    for attr in attributes:
        if isinstance(attr, dict) and attr.get("key") in HTTP_STATUS_KEYS:
            value = attr.get("value")
            if not isinstance(value, dict):
                return False
            raw = value.get("intValue", value.get("int_value", value.get("stringValue")))
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw >= 500
            return isinstance(raw, str) and raw.isdigit() and len(raw) < 6 and int(raw) >= 500
    return False


__all__ = ["JSON", "PROTOBUF", "Decoded", "decode", "decode_json", "decode_protobuf", "encode", "inflate", "media_of"]
