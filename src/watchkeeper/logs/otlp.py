"""OTLP/HTTP logs: an ``ExportLogsServiceRequest`` in protobuf or in the OTLP JSON mapping (hex
trace ids, int64 as strings, enums as numbers) → :class:`LogRecord` values. Pure; a body that
is neither raises :class:`BadRequest`.

>>> body = b'{"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value":'
>>> body += b' {"stringValue": "cart"}}]}, "scopeLogs": [{"logRecords": [{"timeUnixNano":'
>>> body += b' "1733227200000000000", "severityNumber": 17, "body": {"stringValue": "boom"}}]}]}]}'
>>> [(r.service, r.severity.value, r.body, r.at.isoformat()) for r in decode_json(body, NOW, "x").records]
[('cart', 'error', 'boom', '2024-12-03T12:00:00+00:00')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from watchkeeper.logs.record import NO_ATTRIBUTES, LogRecord, level_of
from watchkeeper.model import Severity

NOW = datetime(2026, 1, 1, tzinfo=UTC)  # doctest only
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
#: The attributes of a record kept with it (besides the trace context).
MAX_ATTRIBUTES = 32


class BadRequest(ValueError):
    """The body is not an ExportLogsServiceRequest in the content type it claims."""


@dataclass(slots=True)
class Decoded:
    records: list[LogRecord] = field(default_factory=list)
    #: Records refused one by one (an oversized body): reported as OTLP's partial success.
    rejected: int = 0
    problem: str = ""


#: SeverityNumber 1-24 → level (index 0 unused): TRACE/DEBUG/INFO, WARN, ERROR, FATAL.
_BY_NUMBER = (None, *[Severity.INFO] * 12, *[Severity.WARNING] * 4, *[Severity.ERROR] * 4, *[Severity.CRITICAL] * 4)


def severity_of(number: int, text: str, body: str) -> Severity:
    """OTLP's SeverityNumber (1-24) onto the four levels; the text, then the body, when unset."""
    if 0 < number <= 24:
        return _BY_NUMBER[number]  # type: ignore[return-value]  # index 0 is never read
    if number > 24:
        return Severity.CRITICAL
    if text:
        return Severity.parse(text) if Severity.known(text) else Severity.INFO
    return level_of(body)


def _time(nanos: int, received: datetime) -> datetime:
    if nanos <= 0:
        return received
    try:
        return datetime.fromtimestamp(nanos / 1e9, UTC)
    except (OverflowError, OSError, ValueError):
        return received


# -- JSON ---------------------------------------------------------------------------------------
def _any_json(value: Any) -> Any:
    """An AnyValue of the JSON mapping as a plain value."""
    if not isinstance(value, Mapping):
        return value
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    if "bytesValue" in value:
        return value["bytesValue"]
    if "arrayValue" in value:
        return [_any_json(v) for v in (value["arrayValue"] or {}).get("values", [])]
    if "kvlistValue" in value:
        return {kv.get("key", ""): _any_json(kv.get("value")) for kv in (value["kvlistValue"] or {}).get("values", [])}
    return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _attrs_json(items: Iterable[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for kv in items:
        if isinstance(kv, Mapping) and isinstance(kv.get("key"), str) and len(out) < MAX_ATTRIBUTES:
            out[kv["key"]] = _text(_any_json(kv.get("value")))
    return out


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BadRequest(f"{where} must be an array of objects")
    return value


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise BadRequest(f"{where} must be an object")
    return value


def decode_json(body: bytes, received: datetime, default_service: str, max_line: int = 65_536, *,
                attributes: bool = True) -> Decoded:
    """The records of a JSON body; ``attributes=False``: without the records' attributes and trace
    context (what the server stores has no place for them), which are then not read at all."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None
    try:
        out = Decoded()
        append = out.records.append
        if not isinstance(doc, dict):
            raise BadRequest("the body must be an object")
        for rl in _list(doc.get("resourceLogs", []), "resourceLogs"):
            resource_doc = _object(rl.get("resource", {}), "resource")
            resource = _attrs_json(_list(resource_doc.get("attributes", []), "attributes"))
            service = resource.get("service.name") or default_service
            for sl in _list(rl.get("scopeLogs", []), "scopeLogs"):
                for rec in _list(sl.get("logRecords", []), "logRecords"):
                    value = rec.get("body")
                    # the usual body, a string, without the generic AnyValue walk
                    text = value.get("stringValue") if type(value) is dict else None
                    if type(text) is not str:
                        text = _text(_any_json(value))
                    if len(text) * 4 > max_line and len(text.encode()) > max_line:  # UTF-8: at most 4 bytes each
                        out.rejected += 1
                        out.problem = f"a log body longer than {max_line} bytes"
                        continue
                    attrs: Mapping[str, str] = NO_ATTRIBUTES
                    if attributes:
                        found = _attrs_json(_list(rec.get("attributes", []), "attributes"))
                        for key, name in (("traceId", "trace_id"), ("spanId", "span_id")):
                            if rec.get(key):
                                found[name] = str(rec[key]).lower()
                        attrs = found
                    at = _time(int(rec.get("timeUnixNano") or 0) or int(rec.get("observedTimeUnixNano") or 0),
                               received)
                    severity = severity_of(int(rec.get("severityNumber") or 0), str(rec.get("severityText") or ""),
                                           text)
                    append(LogRecord(service, at, text, severity, "otlp", attrs))
        return out
    except BadRequest as exc:
        raise BadRequest(f"not an OTLP ExportLogsServiceRequest in JSON: {exc}") from None
    except (AttributeError, TypeError, ValueError, OverflowError) as exc:
        raise BadRequest(f"not an OTLP ExportLogsServiceRequest in JSON: {exc}") from None


# -- protobuf -----------------------------------------------------------------------------------
def _any_pb(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_any_pb(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_pb(kv.value) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return value.bytes_value.hex()
    return getattr(value, kind)


def _attrs_pb(items: Iterable[Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for kv in items:
        if len(out) >= MAX_ATTRIBUTES:
            break
        out[kv.key] = _text(_any_pb(kv.value))
    return out


def decode_protobuf(body: bytes, received: datetime, default_service: str, max_line: int = 65_536, *,
                    attributes: bool = True) -> Decoded:
    """The records of a protobuf body, each field of a record read once; ``attributes=False``: as
    :func:`decode_json`."""
    try:
        request = ExportLogsServiceRequest.FromString(body)
    except (DecodeError, RuntimeWarning, ValueError) as exc:
        raise BadRequest(f"not an OTLP ExportLogsServiceRequest in protobuf: {exc}") from None
    out = Decoded()
    append = out.records.append
    for rl in request.resource_logs:
        resource = _attrs_pb(rl.resource.attributes)
        service = resource.get("service.name") or default_service
        for sl in rl.scope_logs:
            for rec in sl.log_records:
                value = rec.body
                # the usual body, a string, without the generic AnyValue walk
                text = value.string_value if value.WhichOneof("value") == "string_value" else _text(_any_pb(value))
                if len(text) * 4 > max_line and len(text.encode()) > max_line:  # UTF-8: at most 4 bytes a character
                    out.rejected += 1
                    out.problem = f"a log body longer than {max_line} bytes"
                    continue
                attrs: Mapping[str, str] = NO_ATTRIBUTES
                if attributes:
                    found = _attrs_pb(rec.attributes) if rec.attributes else {}
                    if rec.trace_id:
                        found["trace_id"] = rec.trace_id.hex()
                    if rec.span_id:
                        found["span_id"] = rec.span_id.hex()
                    attrs = found or NO_ATTRIBUTES
                at = _time(rec.time_unix_nano or rec.observed_time_unix_nano, received)
                append(LogRecord(service, at, text, severity_of(rec.severity_number, rec.severity_text, text), "otlp",
                                 attrs))
    return out


def decode(body: bytes, content_type: str | None, received: datetime, default_service: str,
           max_line: int = 65_536, *, attributes: bool = True) -> Decoded:
    """The records of one request body by its content type (protobuf or JSON); ``attributes=False``:
    without the records' attributes and trace context (the server: it does not store them)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media == PROTOBUF:
        return decode_protobuf(body, received, default_service, max_line, attributes=attributes)
    if media == JSON:
        return decode_json(body, received, default_service, max_line, attributes=attributes)
    raise BadRequest(f"unsupported content type {media or 'none'!r}; send {PROTOBUF} or {JSON}")


def response(media: str, rejected: int, problem: str) -> bytes:
    """An ExportLogsServiceResponse in ``media``, with a partial success when some were refused."""
    if media == PROTOBUF:
        answer = ExportLogsServiceResponse()
        if rejected:
            answer.partial_success.rejected_log_records = rejected
            answer.partial_success.error_message = problem
        return bytes(answer.SerializeToString())
    doc: dict[str, Any] = {}
    if rejected:
        doc["partialSuccess"] = {"rejectedLogRecords": str(rejected), "errorMessage": problem}
    return orjson.dumps(doc)
