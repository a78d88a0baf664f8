"""The lab speaks all three signals: spans exported over OTLP/HTTP to a stand-in receiver (decoded
here with opentelemetry-proto), JSON logs with trace ids, and the code-level faults (exception,
wrong_value, edge_delay) observed through real lab processes, their traces and their logs."""

from __future__ import annotations

import gzip
import json
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from typer.testing import CliRunner

from watchkeeper.cli import app
from watchkeeper.lab import Lab, LabError
from watchkeeper.lab import prometheus as lab_prometheus
from watchkeeper.lab.net import request
from watchkeeper.lab.serve_config import settings_document

from .test_lab import ground_truth, metric, wait_for


class Receiver:
    """A stand-in OTLP/HTTP collector: decodes ``POST /v1/traces`` protobuf bodies and keeps every span
    with its resource's ``service.name`` and the request's Authorization header."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.auth: set[str] = set()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path == "/v1/logs":
                    logs = ExportLogsServiceRequest.FromString(body)
                    with receiver.lock:
                        for rl in logs.resource_logs:
                            service = next(a.value.string_value for a in rl.resource.attributes
                                           if a.key == "service.name")
                            receiver.logs += [{"service": service, "body": r.body.string_value,
                                               "severity": r.severity_text, "trace": r.trace_id.hex(),
                                               "span": r.span_id.hex(),
                                               "attributes": {a.key for a in r.attributes}}
                                              for sl in rl.scope_logs for r in sl.log_records]
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                message = ExportTraceServiceRequest.FromString(body)
                with receiver.lock:
                    receiver.auth.add(self.headers.get("Authorization") or "")
                    for rs in message.resource_spans:
                        service = next(a.value.string_value for a in rs.resource.attributes
                                       if a.key == "service.name")
                        for ss in rs.scope_spans:
                            for s in ss.spans:
                                attrs = {a.key: a.value for a in s.attributes}
                                code = attrs.get("http.response.status_code")
                                peer = attrs.get("peer.service")
                                receiver.spans.append({
                                    "trace": s.trace_id.hex(), "id": s.span_id.hex(),
                                    "parent": s.parent_span_id.hex() or None, "service": service, "name": s.name,
                                    "kind": s.kind, "error": s.status.code == Status.STATUS_CODE_ERROR,
                                    "status": code.int_value if code is not None else None,
                                    "peer": peer.string_value if peer is not None else None,
                                    "start": s.start_time_unix_nano / 1e9,
                                    "duration": (s.end_time_unix_nano - s.start_time_unix_nano) / 1e9,
                                    "events": [e.name for e in s.events]})
                data = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def where(self, pred: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.spans if pred(s)]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[Lab]:
    the_lab = Lab(tmp_path_factory.mktemp("lab"))
    the_lab.up(rps=10, capacity_mb=4.0, monitoring=False, otlp_endpoint=receiver.url, item_share=0.3)
    try:
        yield the_lab
    finally:
        the_lab.down()


def get(url: str, path: str = "/", headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    status, body = request("GET", url + path, timeout=10.0, headers=headers)
    return status, json.loads(body)


def log_lines(lab: Lab, service: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (lab.dir / "logs" / f"{service}.log").read_text().splitlines()]


def test_spans_reach_the_collector_with_parent_and_child_across_services(lab: Lab, receiver: Receiver) -> None:
    def chain() -> list[dict[str, Any]] | None:
        # frontend (server) → its client span to checkout → checkout (server) → its client span to payment
        # → payment (server), all in one trace
        for pay in receiver.where(lambda s: s["service"] == "payment" and s["kind"] == Span.SPAN_KIND_SERVER):
            trace = pay["trace"]
            by_id = {s["id"]: s for s in receiver.where(lambda s: s["trace"] == trace)}  # noqa: B023 (used at once)
            path, span = [pay], pay
            while span["parent"] in by_id:
                span = by_id[span["parent"]]
                path.append(span)
            if len(path) == 5:
                return path
        return None

    path = wait_for(chain, what="a whole frontend → checkout → payment trace at the collector")
    assert [(s["service"], s["kind"]) for s in path] == [
        ("payment", Span.SPAN_KIND_SERVER), ("checkout", Span.SPAN_KIND_CLIENT), ("checkout", Span.SPAN_KIND_SERVER),
        ("frontend", Span.SPAN_KIND_CLIENT), ("frontend", Span.SPAN_KIND_SERVER)]
    assert path[1]["peer"] == "payment" and path[3]["peer"] == "checkout"
    assert path[-1]["parent"] is None  # the load generator does not trace: the frontend is the root
    assert all(s["status"] == 200 and not s["error"] for s in path)
    # every service exports its own batches: the others' spans may arrive after this trace's
    everyone = {"frontend", "checkout", "catalog", "payment", "cache", "store"}
    wait_for(lambda: {s["service"] for s in receiver.where(lambda s: True)} >= everyone,
             what=f"spans of every service ({', '.join(sorted(everyone))}) at the collector")


def test_logs_are_json_lines_with_the_trace_ids_of_the_spans(lab: Lab, receiver: Receiver) -> None:
    def both_paths() -> list[dict[str, Any]] | None:
        # the load here sends GET /item with a share of 0.3: ten lines may all be GET / (0.7^10, ~3 %; CI saw it)
        lines = log_lines(lab, "catalog")
        return lines if {"/", "/item"} <= {r.get("path") for r in lines} else None

    lines = wait_for(both_paths, what="catalog log lines of both paths")
    assert lines[0]["message"].startswith("listening on") and "trace_id" not in lines[0]  # not in a span
    requests_ = [r for r in lines if r.get("path") in ("/", "/item")]
    assert requests_ and {"/", "/item"} <= {r["path"] for r in requests_}
    for r in requests_:
        assert r["level"] == "INFO" and r["service"] == "catalog" and r["status"] == 200
        assert len(r["trace_id"]) == 32 and len(r["span_id"]) == 16
    last = requests_[-1]
    span = wait_for(lambda: receiver.where(lambda s: s["id"] == last["span_id"]), what="the logged span")[0]
    assert span["trace"] == last["trace_id"] and span["service"] == "catalog" and span["kind"] == Span.SPAN_KIND_SERVER

    def exported() -> list[dict[str, Any]]:  # the same line, over OTLP logs
        with receiver.lock:
            return [r for r in receiver.logs if r["span"] == last["span_id"]]

    record = wait_for(exported, what="the OTLP log record")[0]
    assert (record["service"], record["body"], record["severity"], record["trace"]) == (
        "catalog", last["message"], "INFO", last["trace_id"])
    assert {"lab.path", "lab.status", "lab.duration_ms"} <= record["attributes"]


def test_exception_fails_only_its_path_with_a_stack_trace_in_the_log_and_an_error_span(
        lab: Lab, receiver: Receiver) -> None:
    url, front = lab.endpoints()["checkout"], lab.endpoints()["frontend"]
    truth = lab.inject("exception", "checkout")
    assert truth["detail"] == {"path": "/item", "ratio": 1.0}
    for _ in range(3):
        assert get(url, "/item")[0] == 500
        assert get(url, "/")[0] == 200
    assert get(front, "/item")[0] == 502  # its callers fail on that path only
    assert get(front, "/")[0] == 200
    errors = [r for r in log_lines(lab, "checkout") if r["level"] == "ERROR"]
    assert errors[-1]["message"] == "GET /item 500 " + errors[-1]["message"].split()[-1]  # the request line
    errors = [r for r in errors if r["message"].startswith("unhandled exception in GET /item: ")]
    assert errors and not [r for r in log_lines(lab, "checkout") if r.get("path") == "/" and r["level"] == "ERROR"]
    assert "Traceback (most recent call last):" in errors[-1]["message"] and errors[-1]["exception"]
    trace_id = errors[-1]["trace_id"]
    failed = wait_for(lambda: receiver.where(lambda s: s["trace"] == trace_id and s["service"] == "checkout"
                                             and s["kind"] == Span.SPAN_KIND_SERVER), what="the failing span")[0]
    assert failed["error"] and failed["status"] == 500 and failed["name"] == "GET /item"
    assert "exception" in failed["events"]
    assert not any("fault" in r["message"] for r in log_lines(lab, "checkout"))  # the lab's bookkeeping is not in
    lab.restart("checkout")
    assert get(url, "/item")[0] == 200
    assert ground_truth(lab, truth["id"])["ended_by"] == "restart"


def test_wrong_value_makes_the_callers_fail_while_the_service_answers_200(lab: Lab, receiver: Receiver) -> None:
    cache, catalog = lab.endpoints()["cache"], lab.endpoints()["catalog"]
    truth = lab.inject("wrong_value", "cache")
    assert truth["detail"]["to_version"] == "v2" and lab.changes()[-1]["kind"] == "deploy"
    status, body = get(cache)
    assert status == 200 and all(item["price"] < 0 for item in body["items"])
    assert get(catalog)[0] == 500 and get(lab.endpoints()["checkout"], "/item")[0] == 500
    assert get(lab.endpoints()["frontend"])[0] == 502
    wait_for(lambda: metric(catalog, "lab_requests_total", service="catalog", status="500") >= 3,
             what="catalog errors")
    assert metric(cache, "lab_requests_total", service="cache", status="500") == 0  # healthy in its metrics
    assert metric(catalog, "lab_dependency_errors_total", service="catalog", dependency="cache") == 0
    bad = [r for r in log_lines(lab, "catalog") if r["level"] == "ERROR" and "invalid price" in r["message"]]
    assert bad and bad[-1]["dependency"] == "cache" and "Traceback" in bad[-1]["message"]
    assert not [r for r in log_lines(lab, "cache") if r["level"] in ("ERROR", "CRITICAL")]
    lab.restart("cache")  # the configuration stays: a restart does not help
    assert get(catalog)[0] == 500
    assert any("runs configuration v2" in p for p in lab.check("cache"))
    lab.rollback("cache")
    assert get(catalog)[0] == 200
    assert ground_truth(lab, truth["id"])["ended_by"] == "rollback"
    assert lab.check("cache") == []


def test_edge_delay_slows_only_calls_from_one_caller_and_not_the_service_itself(
        lab: Lab, receiver: Receiver) -> None:
    truth = lab.inject("edge_delay", "cache", None, **{"from": "checkout", "delay_ms": 1500})
    since = time.time()  # the fault is on in every cache instance once inject returns
    assert truth["detail"] == {"from": "checkout", "delay_ms": 1500}
    cache = lab.endpoints()["cache"]
    assert get(cache)[0] == 200
    assert get(cache, headers={"X-Lab-Caller": "checkout"})[0] == 200

    def gaps(caller: str) -> list[tuple[float, float]]:
        """(client span − callee server span, callee server span) for new calls from ``caller`` to cache."""
        new = receiver.where(lambda s: s["start"] >= since)
        servers = {s["parent"]: s for s in new if s["service"] == "cache" and s["kind"] == Span.SPAN_KIND_SERVER}
        return [(c["duration"] - servers[c["id"]]["duration"], servers[c["id"]]["duration"]) for c in new
                if c["service"] == caller and c["peer"] == "cache" and c["id"] in servers]

    delayed = wait_for(lambda: len(gaps("checkout")) >= 5 and len(gaps("catalog")) >= 10 and gaps("checkout"),
                       timeout=30, what="calls into cache from both callers")
    assert all(gap >= 1.4 for gap, _ in delayed)  # held before cache handled them: the edge, not the service
    assert statistics.median(server for _, server in delayed) < 0.5
    assert statistics.median(gap for gap, _ in gaps("catalog")) < 0.5  # the other caller's edge is untouched
    slow = [r for r in log_lines(lab, "checkout") if r["level"] == "WARNING" and "slow call to cache" in r["message"]]
    assert slow and not [r for r in log_lines(lab, "catalog") if "slow call to cache" in r["message"]]
    lab.restart("cache")
    assert ground_truth(lab, truth["id"])["ended_by"] == "restart"


def test_code_faults_refuse_what_they_cannot_do_with_a_sentence(lab: Lab) -> None:
    with pytest.raises(LabError, match="nothing in the lab calls frontend"):
        lab.inject("edge_delay", "frontend")
    with pytest.raises(LabError, match="'payment' does not call cache; its callers are: checkout, catalog"):
        lab.inject("edge_delay", "cache", None, **{"from": "payment"})
    with pytest.raises(LabError, match="path must be one of"):
        lab.inject("exception", "store", path="/nope")
    with pytest.raises(LabError, match="ratio must be a number"):
        lab.inject("wrong_value", "store", ratio=2.0)
    result = CliRunner().invoke(app, ["lab", "inject", "edge_delay", "--target", "payment", "--set", "delay_ms=200",
                                      "--duration", "1s", "--dir", str(lab.dir)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["detail"] == {"from": "checkout", "delay_ms": 200.0}  # the only caller
    assert CliRunner().invoke(app, ["lab", "inject", "exception", "--target", "store", "--set", "path",
                                    "--dir", str(lab.dir)]).exit_code == 2
    wait_for(lambda: not lab.open_faults("payment"), what="the edge delay's expiry")


def test_serve_config_gains_logs_and_traces_only_when_asked(tmp_path: Path) -> None:
    topology = {"services": ["a", "b"], "edges": [["a", "b"]]}
    plain = settings_document(tmp_path, topology, port=1, prometheus_url=None)
    assert "logs" not in plain and "traces" not in plain
    doc = settings_document(tmp_path, topology, port=1, prometheus_url=None, signals=True)
    assert doc["traces"] == {"enabled": True}
    assert doc["logs"]["files"] == [{"path": str(tmp_path / "logs" / "a.log"), "service": "a"},
                                    {"path": str(tmp_path / "logs" / "b.log"), "service": "b"}]


def test_signals_send_the_traces_to_the_labs_watchkeeper_with_its_ingest_token(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lab_prometheus, "installed", lambda: False)  # the lab alone, no daemons
    collector = Receiver()  # stands in for 'watchkeeper serve' on the port watchkeeper.yaml names
    lab = Lab(tmp_path / "lab")
    try:
        state = lab.up(rps=5, monitoring=True, signals=True, serve_port=collector.server.server_address[1],
                       services=("a", "b"), edges=[("a", "b")])
        wait_for(lambda: collector.where(lambda s: s["service"] == "b"), what="spans from the lab")
        assert collector.auth == {f"Bearer {state['watchkeeper']['ingest_token']}"}
        settings = yaml.safe_load(lab.settings_file.read_text())
        assert settings["traces"] == {"enabled": True}
        assert settings["logs"]["files"][1] == {"path": str(lab.dir / "logs" / "b.log"), "service": "b"}
        assert settings["port"] == collector.server.server_address[1]
        assert "--no-otlp-logs" in Path(f"/proc/{state['services']['b']['pid']}/cmdline").read_bytes().decode()
        lab.restart("b")  # a restarted service keeps exporting, with the token
        before = len(collector.where(lambda s: s["service"] == "b"))
        wait_for(lambda: len(collector.where(lambda s: s["service"] == "b")) > before, what="spans after restart")
        assert len(collector.auth) == 1
    finally:
        lab.down()
        collector.stop()


def test_a_dead_collector_neither_breaks_nor_slows_the_lab(tmp_path: Path) -> None:
    from watchkeeper.lab.net import free_ports

    lab = Lab(tmp_path / "lab")
    try:
        lab.up(rps=10, monitoring=False, otlp_endpoint=f"http://127.0.0.1:{free_ports(1)[0]}",
               services=("a", "b"), edges=[("a", "b")])
        url = lab.endpoints()["a"]
        wait_for(lambda: metric(url, "lab_requests_total", service="a", status="200") >= 30, timeout=30,
                 what="traffic while every export fails")
        assert metric(url, "lab_requests_total", service="a", status="500") == 0
        out = (lab.dir / "logs" / "a.out").read_text()
        assert out.count("\n") < 10  # the exporter's complaints are rate-limited
    finally:
        lab.down()


def test_up_refuses_a_bad_otlp_endpoint_and_signals_without_monitoring(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["lab", "up", "--no-monitoring", "--otlp-endpoint", "127.0.0.1:4318",
                                      "--dir", str(tmp_path / "lab")])
    assert result.exit_code == 2 and "--otlp-endpoint must be an http(s) URL" in result.output
    result = CliRunner().invoke(app, ["lab", "up", "--no-monitoring", "--signals", "--dir", str(tmp_path / "lab")])
    assert result.exit_code == 2 and "signals need monitoring" in result.output
    assert not (tmp_path / "lab" / "lab.json").exists()
