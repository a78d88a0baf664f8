"""OTLP logs decoding: the SDK's protobuf, the JSON mapping, and bodies that are neither."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as PbRecord
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from watchkeeper.logs.otlp import BadRequest, decode, response
from watchkeeper.logs.record import NO_ATTRIBUTES
from watchkeeper.model import Severity

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def protobuf_body() -> bytes:
    rec = PbRecord(time_unix_nano=1_764_763_200_000_000_000, severity_number=13, body=AnyValue(string_value="slow"),
                   trace_id=bytes.fromhex("5b8efff798038103d269b633813fc60c"), span_id=bytes.fromhex("eee19b7ec3c1b174"),
                   attributes=[KeyValue(key="http.route", value=AnyValue(string_value="/cart"))])
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="cart"))])
    return ExportLogsServiceRequest(resource_logs=[ResourceLogs(resource=resource, scope_logs=[
        ScopeLogs(log_records=[rec, PbRecord(body=AnyValue(string_value="x" * 600))])])]).SerializeToString()


def test_protobuf_records_keep_service_severity_and_trace_context() -> None:
    got = decode(protobuf_body(), "application/x-protobuf", NOW, "unknown", max_line=512)
    assert got.rejected == 1
    [rec] = got.records
    assert (rec.service, rec.severity, rec.body, rec.input) == ("cart", Severity.WARNING, "slow", "otlp")
    assert rec.attributes["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert rec.attributes["http.route"] == "/cart"
    assert rec.at == datetime(2025, 12, 3, 12, 0, tzinfo=UTC)


def test_json_mapping_with_hex_ids_string_ints_and_structured_bodies() -> None:
    body = {"resourceLogs": [{"resource": {"attributes": []}, "scopeLogs": [{"logRecords": [
        {"observedTimeUnixNano": "1764763200000000000", "severityText": "ERROR", "traceId": "AB" * 16,
         "body": {"kvlistValue": {"values": [{"key": "msg", "value": {"stringValue": "hi"}},
                                             {"key": "n", "value": {"intValue": "3"}}]}}},
        {"body": {"stringValue": "2026-12-03 WARN disk"}}]}]}]}
    got = decode(orjson.dumps(body), "application/json; charset=utf-8", NOW, "fallback")
    first, second = got.records
    assert first.service == "fallback" and first.severity is Severity.ERROR and first.body == '{"msg":"hi","n":3}'
    assert first.attributes["trace_id"] == "ab" * 16
    assert second.severity is Severity.WARNING and second.at == NOW


@pytest.mark.parametrize("media", ["application/x-protobuf", "application/json"])
def test_without_attributes_the_records_are_the_same_but_for_them(media: str) -> None:
    records = [PbRecord(time_unix_nano=1_764_763_200_123_456_000 + i, severity_number=n, severity_text=text,
                        body=AnyValue(string_value=body), trace_id=b"\x01" * 16,
                        attributes=[KeyValue(key="k", value=AnyValue(int_value=i))])
               for i, (n, text, body) in enumerate([(0, "", "ERROR db down"), (0, "warn", "x"), (24, "", "y"),
                                                    (30, "", "z"), (9, "", "w"), (0, "", "plain")])]
    records.append(PbRecord(body=AnyValue(int_value=7)))
    request = ExportLogsServiceRequest(resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])])
    body = request.SerializeToString()
    if media == "application/json":
        from google.protobuf import json_format

        body = json_format.MessageToJson(request, use_integers_for_enums=True).encode()
    full = decode(body, media, NOW, "svc")
    bare = decode(body, media, NOW, "svc", attributes=False)
    assert [r._replace(attributes=NO_ATTRIBUTES) for r in full.records] == bare.records
    assert all(r.attributes is NO_ATTRIBUTES for r in bare.records) and full.records[0].attributes["k"] == "0"
    assert [r.severity for r in bare.records] == [Severity.ERROR, Severity.WARNING, Severity.CRITICAL,
                                                  Severity.CRITICAL, Severity.INFO, Severity.INFO, Severity.INFO]
    assert bare.records[0].at == datetime(2025, 12, 3, 12, 0, 0, 123456, tzinfo=UTC) and bare.records[-1].at == NOW
    assert bare.records[-1].body == "7"


@pytest.mark.parametrize(("body", "media", "why"), [
    (b"\xff\xff\xff\xff", "application/x-protobuf", "protobuf"),
    (b"{not json", "application/json", "malformed JSON"),
    (b'{"resourceLogs": 5}', "application/json", "not an OTLP"),
    (b"[]", "application/json", "not an OTLP"),
    (b"x", "text/plain", "unsupported content type"),
])
def test_bad_bodies_are_refused(body: bytes, media: str, why: str) -> None:
    with pytest.raises(BadRequest, match=why):
        decode(body, media, NOW, "x")


def test_responses_report_partial_success() -> None:
    assert orjson.loads(response("application/json", 2, "too long")) == {
        "partialSuccess": {"rejectedLogRecords": "2", "errorMessage": "too long"}}
    assert response("application/x-protobuf", 0, "") == b""
