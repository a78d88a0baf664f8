"""Recorded campaigns with every signal: the OTLP span receiver ``lab record`` uses, and a short real
campaign (metrics, spans, JSON logs, ground truth) that ``eval rca --format lab`` reads."""

from __future__ import annotations

import gzip
import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from typer.testing import CliRunner

from watchkeeper.cli import app
from watchkeeper.eval.lab_series import campaign_entity
from watchkeeper.eval.rca import read_lab
from watchkeeper.lab.control import LabError, check_topology, read_topology
from watchkeeper.lab.net import request
from watchkeeper.lab.record import CampaignTiming, FaultSpec, parse_campaign, record_campaign
from watchkeeper.lab.spans import SpanSink, read_spans


def post(url: str, body: bytes, **headers: str) -> int:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5.0)
    try:
        conn.request("POST", parts.path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


FIELDS = {"trace_id", "span_id", "parent_id", "service", "operation", "start", "duration", "error", "kind"}


def _request() -> ExportTraceServiceRequest:
    span = Span(trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"), span_id=bytes.fromhex("b7ad6b7169203331"),
                parent_span_id=bytes.fromhex("00f067aa0ba902b7"), name="GET /item", kind=Span.SPAN_KIND_CLIENT,
                start_time_unix_nano=1_700_000_000_000_000_000, end_time_unix_nano=1_700_000_000_250_000_000,
                attributes=[KeyValue(key="http.response.status_code", value=AnyValue(int_value=503)),
                            KeyValue(key="peer.service", value=AnyValue(string_value="cache"))],
                status=Status(code=Status.STATUS_CODE_UNSET))
    resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="checkout"))])
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(resource=resource,
                                                                   scope_spans=[ScopeSpans(spans=[span])])])


def test_span_sink_takes_protobuf_plain_and_gzip_and_refuses_the_rest(tmp_path: Path) -> None:
    sink = SpanSink(tmp_path / "spans.jsonl").start()
    try:
        body = gzip.compress(_request().SerializeToString())
        assert post(sink.url + "/v1/traces", body, **{"Content-Type": "application/x-protobuf",
                                                      "Content-Encoding": "gzip"}) == 200
        server = Span(trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
                      span_id=bytes.fromhex("c7ad6b7169203331"), parent_span_id=bytes.fromhex("b7ad6b7169203331"),
                      name="GET /item", kind=Span.SPAN_KIND_SERVER, start_time_unix_nano=1_700_000_000_100_000_000,
                      end_time_unix_nano=1_700_000_000_150_000_000, status=Status(code=Status.STATUS_CODE_ERROR))
        resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="cache"))])
        plain = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
            resource=resource, scope_spans=[ScopeSpans(spans=[server])])]).SerializeToString()
        assert post(sink.url + "/v1/traces", plain, **{"Content-Type": "application/x-protobuf"}) == 200
        doc = {"resourceSpans": []}
        assert request("POST", sink.url + "/v1/traces", doc, timeout=5.0)[0] == 415
        assert post(sink.url + "/v1/traces", b"\xff\x00 not otlp", **{"Content-Type": "application/x-protobuf"}) == 400
        assert request("POST", sink.url + "/v1/metrics", doc, timeout=5.0)[0] == 404
        assert request("POST", sink.url + "/v1/logs", {}, timeout=5.0)[0] == 200  # taken, dropped
    finally:
        sink.stop()
    client, server = read_spans(tmp_path / "spans.jsonl")
    assert set(client) >= FIELDS and set(server) >= FIELDS
    assert client == {"trace_id": "0af7651916cd43dd8448eb211c80319c", "span_id": "b7ad6b7169203331",
                      "parent_id": "00f067aa0ba902b7", "service": "checkout", "operation": "GET /item",
                      "start": 1_700_000_000.0, "duration": 0.25, "error": True, "kind": "client",
                      "status_code": 503, "peer": "cache"}  # error from the HTTP status
    assert (server["service"], server["kind"], server["parent_id"], server["error"]) == (
        "cache", "server", "b7ad6b7169203331", True)  # error from the span status
    assert sink.received == 2 and sink.rejected == 2 and sink.log_requests == 1


def test_campaign_specs_parse_and_refuse_with_a_sentence() -> None:
    assert parse_campaign("exception:checkout:path=/,hang:store:delay_s=2") == [
        FaultSpec("exception", "checkout", {"path": "/"}), FaultSpec("hang", "store", {"delay_s": 2.0})]
    with pytest.raises(ValueError, match="KIND:TARGET"):
        FaultSpec.parse("exception")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        FaultSpec.parse("hang:store:delay_s")
    with pytest.raises(ValueError, match="different targets"):
        record_campaign(Path("/nonexistent/never-written"), parse_campaign("hang:store,exception:store"))
    result = CliRunner().invoke(app, ["lab", "record", "/nonexistent/never-written", "--faults", "melt:store"])
    assert result.exit_code == 2 and "unknown fault melt" in result.output


def test_a_short_campaign_records_metrics_spans_logs_and_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "campaign"
    summary = record_campaign(out, parse_campaign("exception:checkout,edge_delay:cache:from=catalog:delay_ms=400"),
                              CampaignTiming(warmup=4, fault=8, gap=3, concurrent=2, interval=1.0), rps=10)
    assert summary["faults"] == 2 and summary["spans"] > 100
    faults = [json.loads(line) for line in (out / "faults.jsonl").read_text().splitlines()]
    started = [f for f in faults if "fault" in f]
    assert [(f["fault"], f["target"]) for f in started] == [("exception", "checkout"), ("edge_delay", "cache")]
    assert {f["id"] for f in faults if f.get("ended_by") == "expiry"} == {f["id"] for f in started}
    assert set(json.loads((out / "topology.json").read_text())["services"]) >= {"checkout", "cache"}
    spans = read_spans(out / "spans.jsonl")
    assert len(spans) == summary["spans"] and all(set(s) >= FIELDS for s in spans)
    assert any(s["error"] and s["service"] == "checkout" and s["operation"] == "GET /item" and s["kind"] == "server"
               for s in spans)
    ids = {s["span_id"] for s in spans}
    assert sum(1 for s in spans if s["parent_id"] in ids) > len(spans) / 2  # parents recorded too
    logs = {p.stem for p in (out / "logs").glob("*.log")}
    assert {"frontend", "checkout", "cache"} <= logs
    lines = [json.loads(x) for x in (out / "logs" / "checkout.log").read_text().splitlines()]
    assert any("Traceback" in r["message"] and r["level"] == "ERROR" for r in lines)
    assert (out / "metrics" / "checkout.csv").read_text().startswith("timestamp,")
    cases = read_lab(out)
    assert [(c.kind, c.truth) for c in cases] == [("exception", "checkout"), ("edge_delay", "cache")]
    entity, step = campaign_entity(out)  # a labelled series for 'eval detect --lab'
    assert step == pytest.approx(1.0, abs=0.2)
    assert len(entity.train) >= 2 and entity.labels.any() and np.isfinite(entity.test).all()
    assert not list(tmp_path.glob("watchkeeper-lab-record-*"))


def test_a_topology_of_ones_own_is_checked_with_a_sentence(tmp_path: Path) -> None:
    assert check_topology(["gw", "api", "db"], [("gw", "api"), ("gw", "db"), ("api", "db")])[0] == ["gw", "api", "db"]
    refused = {
        "names no service": ([], []),
        "not in the lab: x": (["gw"], [("gw", "x")]),
        "cannot call itself": (["gw"], [("gw", "gw")]),
        "cycle \\(gw → api → gw\\)": (["gw", "api"], [("gw", "api"), ("api", "gw")]),
        "db: not reachable from gw": (["gw", "db"], []),
        "twice": (["gw", "gw"], []),
        "lower case": (["gw", "../etc"], [("gw", "../etc")]),
        "at most 24": ([f"s{i}" for i in range(25)], []),
        "an edge is": (["gw", "api"], [("gw", "api", "db")]),
    }
    for message, (services, edges) in refused.items():
        with pytest.raises(LabError, match=message):
            check_topology(services, edges)
    bodies = {"not JSON": b"{", "a topology is": b"[1, 2]", "are names": b'{"services": [1], "edges": []}',
              "cannot read": None, "not JSON ": b"\xff\xfe\x00binary"}
    for message, body in bodies.items():
        path = tmp_path / "t.json"
        path.unlink(missing_ok=True)
        if body is not None:
            path.write_bytes(body)
        with pytest.raises(LabError, match=message.strip()):
            read_topology(path)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"services": ["gw", "api"], "edges": [["gw", "api"]]}))
    assert read_topology(good) == (["gw", "api"], [("gw", "api")])
    cli = CliRunner()
    result = cli.invoke(app, ["lab", "record", str(tmp_path / "out"), "--topology", str(good)])
    assert result.exit_code == 2 and "name the faults with --faults" in result.output
    result = cli.invoke(app, ["lab", "record", str(tmp_path / "out"), "--topology", str(good), "--faults", "hang:store"])
    assert result.exit_code == 2 and "no service store" in result.output
    (tmp_path / "loop.json").write_text(json.dumps({"services": ["gw", "api"], "edges": [["gw", "api"], ["api", "gw"]]}))
    result = cli.invoke(app, ["lab", "up", "--no-monitoring", "--dir", str(tmp_path / "lab"),
                              "--topology", str(tmp_path / "loop.json")])
    assert result.exit_code == 2 and "cycle" in result.output and not (tmp_path / "lab" / "lab.json").exists()


def test_a_campaign_runs_on_a_topology_of_ones_own(tmp_path: Path) -> None:
    out = tmp_path / "campaign"
    shape = (["gateway", "orders", "ledger"], [("gateway", "orders"), ("gateway", "ledger"), ("orders", "ledger")])
    summary = record_campaign(out, parse_campaign("exception:orders"),
                              CampaignTiming(warmup=3, fault=6, gap=2, concurrent=1, interval=1.0), rps=10,
                              topology=shape)
    assert summary["faults"] == 1
    assert json.loads((out / "topology.json").read_text()) == {
        "services": ["gateway", "orders", "ledger"], "edges": [["gateway", "orders"], ["gateway", "ledger"],
                                                               ["orders", "ledger"]]}
    assert {p.stem for p in (out / "metrics").glob("*.csv")} == {"gateway", "orders", "ledger"}
    spans = read_spans(out / "spans.jsonl")
    assert {s["service"] for s in spans} == {"gateway", "orders", "ledger"}
    assert any(s["error"] and s["service"] == "orders" and s["kind"] == "server" for s in spans)
    assert [(c.kind, c.truth) for c in read_lab(out)] == [("exception", "orders")]
