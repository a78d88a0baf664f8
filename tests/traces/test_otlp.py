"""OTLP/HTTP trace decoding: exports captured from the OpenTelemetry SDK (protobuf, and the same
SDK's request in the OTLP/JSON mapping; ``data/capture.py`` wrote both), partial success, hostile bodies."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from watchkeeper.errors import InputError
from watchkeeper.traces import otlp
from watchkeeper.traces.red import call_graph

DATA = Path(__file__).parent / "data"


@pytest.fixture(params=["pb", "json"])
def sample(request: pytest.FixtureRequest) -> tuple[bytes, str]:
    media = otlp.PROTOBUF if request.param == "pb" else otlp.JSON
    return (DATA / f"sdk_export.{request.param}").read_bytes(), media


def test_sdk_exports_decode_to_spans_with_services_errors_and_kinds(sample: tuple[bytes, str]) -> None:
    body, media = sample
    decoded = otlp.decode(body, media)
    assert decoded.rejected == 0
    by_name = {s.operation: s for s in decoded.spans}
    assert sorted(by_name) == ["GET /checkout", "POST /charge", "POST /checkout", "POST checkout", "POST payment"]
    assert {s.service for s in decoded.spans} == {"frontend", "checkout", "payment"}
    assert by_name["POST /charge"].error  # status ERROR
    assert by_name["GET /checkout"].error  # http.response.status_code 502
    assert not by_name["POST /checkout"].error
    assert (by_name["GET /checkout"].kind, by_name["POST checkout"].kind) == ("server", "client")
    assert by_name["GET /checkout"].parent_id is None
    assert len({s.trace_id for s in decoded.spans}) == 1 and all(len(s.trace_id) == 32 for s in decoded.spans)
    assert all(s.duration >= 0 and s.start > 1.7e9 for s in decoded.spans)
    assert by_name["POST /charge"].duration >= 0.002  # the SDK span slept 2 ms
    # the call chain's parent ids resolve to the service graph
    assert sorted(call_graph(decoded.spans).edges) == [("checkout", "payment"), ("frontend", "checkout")]


def test_protobuf_and_json_of_one_request_decode_alike() -> None:
    request = ExportTraceServiceRequest()
    request.ParseFromString((DATA / "sdk_export.pb").read_bytes())
    json_doc = _json_of(request)
    assert otlp.decode_json(orjson.dumps(json_doc)).spans == otlp.decode_protobuf(request.SerializeToString()).spans


def _json_of(request: ExportTraceServiceRequest) -> dict[str, Any]:
    """The OTLP/JSON mapping of ``request``: hex ids, int64 as strings, enums as integers."""
    from google.protobuf.json_format import MessageToDict

    doc = MessageToDict(request, use_integers_for_enums=True)
    import base64

    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in s:
                        s[key] = base64.b64decode(s[key]).hex()
    return doc


def _json_span(**over: Any) -> dict[str, Any]:
    span = {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "op",
            "kind": 2, "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000"}
    span.update(over)
    return {k: v for k, v in span.items() if v is not None}


def _json_body(*spans: dict[str, Any], service: Any = "api") -> bytes:
    attrs = [] if service is None else [{"key": "service.name", "value": {"stringValue": service}}]
    return orjson.dumps({"resourceSpans": [{"resource": {"attributes": attrs}, "scopeSpans": [{"spans": list(spans)}]}]})


@pytest.mark.parametrize(("over", "reason"), [
    ({"traceId": "00000000000000000000000000000000"}, "trace id"),
    ({"traceId": "abc"}, "trace id"),
    ({"traceId": "zz" * 16}, "trace id"),
    ({"spanId": "0000000000000000"}, "span id"),
    ({"spanId": None}, "span id"),
    ({"parentSpanId": "12"}, "parent span id"),
    ({"endTimeUnixNano": "1"}, "ends before"),
    ({"startTimeUnixNano": None}, "no start time"),
    ({"startTimeUnixNano": "99999999999999999999999"}, "no start time"),
    ({"kind": 9}, "kind"),
    ({"name": 5}, "name"),
])
def test_an_unusable_span_is_rejected_alone(over: dict[str, Any], reason: str) -> None:
    good = _json_span(spanId="1111111111111111")
    decoded = otlp.decode_json(_json_body(good, _json_span(**over)))
    assert [s.span_id for s in decoded.spans] == ["1111111111111111"]
    assert decoded.rejected == 1 and reason in decoded.message
    assert decoded.response_json() == {"partialSuccess": {"rejectedSpans": "1", "errorMessage": decoded.message}}
    response = ExportTraceServiceResponse()
    response.ParseFromString(decoded.response_protobuf())
    assert response.partial_success.rejected_spans == 1


def test_json_takes_numbers_enum_names_upper_case_hex_and_snake_case() -> None:
    span = {"trace_id": "5B8EFFF798038103D269B633813FC60C", "span_id": "EEE19B7EC3C1B174", "name": "x",
            "kind": "SPAN_KIND_CLIENT", "start_time_unix_nano": 1544712660000000000,
            "end_time_unix_nano": 1544712661000000000, "status": {"code": "STATUS_CODE_ERROR"},
            "attributes": [{"key": "http.status_code", "value": {"intValue": "503"}}]}
    body = orjson.dumps({"resource_spans": [{"resource": {}, "scope_spans": [{"spans": [span]}]}]})
    (s,) = otlp.decode_json(body).spans
    assert (s.trace_id, s.kind, s.duration, s.error, s.service) == (
        "5b8efff798038103d269b633813fc60c", "client", 1.0, True, otlp.UNKNOWN_SERVICE)


def test_a_client_span_names_its_peer_service_in_both_encodings() -> None:
    peer = [{"key": "peer.service", "value": {"stringValue": "payments"}}]
    client = _json_span(kind=3, attributes=peer)
    server = _json_span(spanId="eee19b7ec3c1b175", kind=2, attributes=peer)  # only a client span calls a peer
    odd = _json_span(spanId="eee19b7ec3c1b176", kind=3, attributes=[{"key": "peer.service", "value": {"intValue": "5"}}])
    spans = otlp.decode_json(_json_body(client, server, odd)).spans
    assert [s.peer for s in spans] == ["payments", None, None]
    [span] = otlp.decode_protobuf(otlp.encode([spans[0]])).spans  # protobuf: the same attribute
    assert span == spans[0] and span.peer == "payments" and span.kind == "client"


def test_http_status_below_500_is_not_an_error() -> None:
    span = _json_span(attributes=[{"key": "http.response.status_code", "value": {"intValue": "404"}}])
    assert not otlp.decode_json(_json_body(span)).spans[0].error


def test_a_long_service_name_rejects_its_spans_and_a_long_operation_is_cut() -> None:
    decoded = otlp.decode_json(_json_body(_json_span(), service="s" * 300))
    assert (decoded.spans, decoded.rejected) == ([], 1)
    assert len(otlp.decode_json(_json_body(_json_span(name="o" * 1000))).spans[0].operation) == otlp.MAX_NAME


@pytest.mark.parametrize("body", [
    b"", b"[]", b"null", b"5", b'"x"', b"{not json", b'{"resourceSpans": 5}', b'{"resourceSpans": [5]}',
    b'{"resourceSpans": [{"resource": 5}]}', b'{"resourceSpans": [{"resource": {"attributes": 5}}]}',
    b'{"resourceSpans": [{"scopeSpans": [7]}]}', b'{"resourceSpans": [{"scopeSpans": [{"spans": {}}]}]}',
    b'{"resourceSpans": [{"scopeSpans": [{"spans": ["x"]}]}]}',
])
def test_hostile_json_is_a_400_with_a_sentence(body: bytes) -> None:
    with pytest.raises(InputError) as caught:
        otlp.decode_json(body)
    assert caught.value.status == 400 and str(caught.value)


def test_an_empty_object_is_an_empty_export() -> None:
    assert otlp.decode_json(b"{}").spans == [] and otlp.decode_protobuf(b"").spans == []


@pytest.mark.parametrize("body", [b"garbage", b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x05\x0a\x03\x0a\x01", bytes(range(256))])
def test_hostile_protobuf_is_a_400(body: bytes) -> None:
    with pytest.raises(InputError) as caught:
        otlp.decode_protobuf(body)
    assert caught.value.status == 400


def test_gzip_and_deflate_inflate_within_the_limit() -> None:
    raw = (DATA / "sdk_export.pb").read_bytes()
    assert otlp.inflate(gzip.compress(raw), "gzip", 10_000) == raw
    assert otlp.inflate(zlib.compress(raw), "deflate", 10_000) == raw
    assert otlp.inflate(raw, None, 10) == raw  # the limit is for inflating; the route limits the body


@pytest.mark.parametrize(("body", "encoding", "status"), [
    (gzip.compress(b"\0" * 1_000_000), "gzip", 413),  # a bomb: stops at the limit
    (b"not gzip", "gzip", 400),
    (gzip.compress(b"x" * 100)[:-12], "gzip", 400),  # cut off
    (b"x", "br", 415),
])
def test_bad_encodings_are_refused(body: bytes, encoding: str, status: int) -> None:
    with pytest.raises(InputError) as caught:
        otlp.inflate(body, encoding, 10_000)
    assert caught.value.status == status


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/grpc", "multipart/form-data"])
def test_other_media_types_are_a_415(content_type: str | None) -> None:
    with pytest.raises(InputError) as caught:
        otlp.media_of(content_type)
    assert caught.value.status == 415
