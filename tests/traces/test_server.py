"""Traces in the server (SQLite and PostgreSQL): POST /v1/traces, the stored spans and RED rows, the
topology with the edges seen in traces, trace anomalies as incidents, hostile bodies, retention."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from conftest import Clock
from watchkeeper.server import create_app
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.service.traces import Traces
from watchkeeper.storage.traces import TraceStore
from watchkeeper.traces import otlp
from watchkeeper.traces.spans import Span

DATA = Path(__file__).parent / "data"
PB = {"Content-Type": otlp.PROTOBUF}
JSON = {"Content-Type": otlp.JSON}


class Client:
    def __init__(self, wk: Watchkeeper) -> None:
        self.wk = wk
        self.app = create_app(wk, upgrade=False)
        self.http = TestClient(self.app)
        self.ingest = {"Authorization": f"Bearer {wk.create_token(Role.INGEST, 'otel', 'test')}"}
        self.admin = {"Authorization": f"Bearer {wk.create_token(Role.ADMIN, 'admin', 'test')}"}

    @property
    def traces(self) -> Traces:
        found: Traces = self.app.state.traces
        return found

    def export(self, body: bytes, headers: dict[str, str] | None = None) -> Any:
        return self.http.post("/v1/traces", content=body, headers={**self.ingest, **(headers or PB)})

    def get(self, path: str, **params: Any) -> Any:
        return self.http.get(path, headers=self.admin, params=params)


@pytest.fixture
def make_client(make_service: Callable[..., Watchkeeper], db_url: str) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(**settings: Any) -> Client:
        c = Client(make_service(db_url, **settings))
        c.http.__enter__()
        made.append(c)
        return c

    yield make
    for c in made:
        c.http.__exit__(None, None, None)


def count(wk: Watchkeeper, table: str) -> int:
    with wk.db.read() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def chain(i: int, t: float, *, db_latency: float = 0.01, db_error: bool = False) -> list[Span]:
    """One request: web (server) → web's client span → db (server)."""
    trace = f"{i + 1:032x}"
    ids = [f"{3 * i + k:016x}" for k in (1, 2, 3)]
    return [Span(trace, ids[0], None, "web", "GET /", t, db_latency + 0.02, db_error, "server"),
            Span(trace, ids[1], ids[0], "web", "db.query", t + 0.001, db_latency + 0.002, db_error, "client"),
            Span(trace, ids[2], ids[1], "db", "SELECT", t + 0.002, db_latency, db_error, "server")]


def test_sdk_exports_are_committed_and_answered_as_otlp(make_client: Callable[..., Client]) -> None:
    c = make_client()
    r = c.export((DATA / "sdk_export.pb").read_bytes())
    assert r.status_code == 200 and r.headers["content-type"] == otlp.PROTOBUF
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(r.content)
    assert not answer.HasField("partial_success")
    r = c.export(gzip.compress((DATA / "sdk_export.json").read_bytes()), {**JSON, "Content-Encoding": "gzip"})
    assert (r.status_code, r.json()) == (200, {})
    assert count(c.wk, "spans") == 10  # committed before the answer
    assert 'watchkeeper_spans_total{outcome="accepted"} 10.0' in c.http.get("/metrics").text
    trace_id = otlp.decode((DATA / "sdk_export.json").read_bytes(), otlp.JSON).spans[0].trace_id
    found = c.get(f"/api/v1/traces/{trace_id.upper()}").json()
    # the two files hold the same SDK export: a span sent twice (an exporter's retry) is stored twice
    assert found["trace_id"] == trace_id and len(found["spans"]) == 10
    assert {s["service"] for s in found["spans"]} == {"frontend", "checkout", "payment"}
    assert c.get(f"/api/v1/traces/{'a' * 32}").status_code == 404
    assert c.get("/api/v1/traces/not-a-trace-id").status_code == 422


def test_only_ingest_tokens_export(make_client: Callable[..., Client]) -> None:
    c = make_client()
    body = (DATA / "sdk_export.pb").read_bytes()
    assert c.http.post("/v1/traces", content=body, headers=PB).status_code == 401
    viewer = {"Authorization": f"Bearer {c.wk.create_token(Role.VIEWER, 'v', 'test')}"}
    assert c.http.post("/v1/traces", content=body, headers={**PB, **viewer}).status_code == 403
    assert count(c.wk, "spans") == 0


def test_partial_success_names_the_rejected_spans(make_client: Callable[..., Client]) -> None:
    c = make_client()
    good, bad = chain(0, c.wk.clock().timestamp())[0], chain(1, c.wk.clock().timestamp())[0]
    request = otlp.decode_protobuf(otlp.encode([good]))
    assert request.spans == [good]
    body = orjson.loads(orjson.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "web"}}]}, "scopeSpans": [{"spans": [
            {"traceId": good.trace_id, "spanId": good.span_id, "name": "GET /", "kind": 2,
             "startTimeUnixNano": str(int(good.start * 1e9)), "endTimeUnixNano": str(int(good.start * 1e9) + 5)},
            {"traceId": bad.trace_id, "spanId": "00", "name": "GET /", "startTimeUnixNano": "1",
             "endTimeUnixNano": "2"}]}]}]}))
    r = c.export(orjson.dumps(body), JSON)
    assert r.status_code == 200
    assert r.json()["partialSuccess"]["rejectedSpans"] == "1"
    assert "span id" in r.json()["partialSuccess"]["errorMessage"]
    assert count(c.wk, "spans") == 1


HOSTILE: list[tuple[bytes, dict[str, str], int]] = [
    (b"garbage", PB, 400),
    (b"{not json", JSON, 400),
    (b"[1, 2]", JSON, 400),
    (b'{"resourceSpans": {"a": 1}}', JSON, 400),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [null]}]}]}', JSON, 400),
    (b"[" * 100_000, JSON, 400),
    (b'{"a": "\\u0000"}', JSON, 200),  # an unknown field: ignored, as protobuf's JSON mapping does
    (b"{}", {"Content-Type": "text/plain"}, 415),
    (b"{}", {}, 415),
    (b"\x1f\x8b\x08\x00garbage", {**PB, "Content-Encoding": "gzip"}, 400),
    (gzip.compress(b"\0" * 20_000_000), {**PB, "Content-Encoding": "gzip"}, 413),
    (b"{}", {**JSON, "Content-Encoding": "compress"}, 415),
    (b"\xff\xfe" * 100, JSON, 400),
]


@pytest.mark.parametrize(("body", "headers", "status"), HOSTILE)
def test_hostile_bodies_get_a_4xx_sentence_and_are_dead_lettered(
    make_client: Callable[..., Client], body: bytes, headers: dict[str, str], status: int,
) -> None:
    c = make_client()
    r = c.http.post("/v1/traces", content=body, headers={**c.ingest, **headers})
    assert r.status_code == status, r.text
    if status >= 400:
        assert r.json()["error"]
        letters = c.get("/api/v1/deadletters").json()
        assert letters[0]["source"] == "otlp-traces" and letters[0]["status"] == status


def test_a_body_over_the_limit_is_a_413_and_dead_lettered(make_client: Callable[..., Client]) -> None:
    c = make_client(max_body_bytes=1000)
    r = c.export(b"\x0a" * 5000)
    assert r.status_code == 413
    assert c.get("/api/v1/deadletters").json()[0]["truncated"]


def test_red_rows_topology_and_trace_source(make_client: Callable[..., Client], clock: Clock) -> None:
    c = make_client(topology={"services": {"db": {"depends_on": ["web"]}, "web": {}, "cache": {}}},
                    traces={"step_s": 60, "lateness_s": 5})
    t0 = clock.now.timestamp()
    spans = [s for i in range(50) for s in chain(i, t0 + 2 * i)]
    assert c.export(otlp.encode(spans)).status_code == 200
    clock.advance(minutes=5)
    rows = c.traces.flush()
    assert rows and {r.scope for r in rows} == {"service", "edge", "operation"}
    red = c.get("/api/v1/traces/red", service="db", start=(clock.now - timedelta(hours=1)).isoformat()).json()
    edge_rows = [r for r in red if r["scope"] == "edge"]
    assert {r["name"] for r in edge_rows} == {"web->db"} and sum(r["count"] for r in edge_rows) == 50
    assert all(r["p95"] > 0 and r["error_ratio"] == 0 for r in edge_rows)
    assert c.get("/api/v1/traces/red", edge="web->db").json() == edge_rows  # the last hour by default
    assert c.get("/api/v1/traces/red", edge="nonsense").status_code == 422
    # an 'end' at the first instant a datetime has: a 4xx with a sentence, not an overflow (a 500)
    first = c.get("/api/v1/traces/red", end="0001-01-01T00:00:00Z")
    assert first.status_code == 422 and "after 'start'" in first.text
    assert c.get("/api/v1/traces/red", end="0001-01-01T00:30:00Z").json() == []  # within its first hour: empty
    # the configured graph says db → web: the traces' web → db conflicts with it, and the configuration wins
    topo = c.get("/api/v1/topology").json()
    assert [(e["source"], e["target"], e["sources"]) for e in topo["edges"]] == [("db", "web", ["settings"])]
    # an edge only traces know joins the graph, with its call rate
    more = [Span(f"{900 + i:032x}", f"{900 + i:016x}", None, "web", "GET /x", clock.now.timestamp() + i, 0.01,
                 False, "server") for i in range(3)]
    more += [Span(f"{900 + i:032x}", f"{950 + i:016x}", f"{900 + i:016x}", "cache", "GET", clock.now.timestamp() + i,
                  0.001, False, "server") for i in range(3)]
    c.export(otlp.encode(more))
    clock.advance(minutes=5)
    c.traces.flush()
    topo = c.get("/api/v1/topology").json()
    cache = next(e for e in topo["edges"] if e["target"] == "cache")
    assert (cache["source"], cache["sources"], cache["calls"]) == ("web", ["traces"], 3)
    assert cache["rate"] == pytest.approx(3 / 60)
    # the ranker's TraceSource reads the same rows back as series
    series = TraceStore(c.wk.db).series(["db"], t0, clock.now.timestamp())
    assert {"trace.latency_p95", "edge:web->db.latency_p95", "edge:web->db.rate"} <= set(series["db"])
    assert set(series) == {"db"}  # db calls nobody
    assert set(TraceStore(c.wk.db).series(["web"], t0, clock.now.timestamp())) == {"web", "db", "cache"}  # its callees
    assert TraceStore(c.wk.db).series([], t0, clock.now.timestamp()) == {}


def test_a_latency_spike_on_an_edge_opens_an_incident_with_exemplar_traces(
    make_client: Callable[..., Client], clock: Clock,
) -> None:
    c = make_client(traces={"step_s": 60, "lateness_s": 1, "anomalies": {
        "detector": "robust", "options": {"window": 16, "season": "none", "warmup": 5}}})
    i = 0
    for minute in range(40):  # 40 quiet minutes: db answers in about 10 ms
        t = clock.now.timestamp()
        spans = [s for k in range(10) for s in chain(i + k, t + k, db_latency=0.010 + 0.0005 * ((minute + k) % 3))]
        i += 10
        assert c.export(otlp.encode(spans)).status_code == 200
        clock.advance(minutes=1)
    assert c.get("/api/v1/incidents").json() == []
    t = clock.now.timestamp()
    slow = [s for k in range(10) for s in chain(i + k, t + k, db_latency=0.8)]
    c.export(otlp.encode(slow))
    clock.advance(minutes=2)
    c.traces.flush()
    incidents = c.get("/api/v1/incidents").json()
    # db's incident, and web's: its served calls slowed too (no topology is configured to join them)
    assert sorted(s for i in incidents for s in i["services"]) == ["db", "web"]
    with c.wk.db.read() as conn:
        rows = conn.execute(sa.text("SELECT source, kind, service, raw FROM events WHERE kind = 'trace'")).all()
    assert {r.source for r in rows} == {"traces"} and {r.service for r in rows} == {"db", "web"}
    raw = [orjson.loads(r.raw) if isinstance(r.raw, str) else r.raw for r in rows]
    slow_traces = {s.trace_id for s in slow}
    edge = next(e for e in raw if e["edge"] == "web->db")
    assert edge["metric"] == "latency_p95" and edge["signal"] == "traces"
    assert 1 <= len(edge["exemplars"]) <= 5 and set(edge["exemplars"]) <= slow_traces


def test_retention_prunes_old_spans_the_size_cap_and_old_red_rows(
    make_client: Callable[..., Client], clock: Clock,
) -> None:
    c = make_client(retention_days=30, traces={"step_s": 60, "lateness_s": 1,
                                               "retention": {"raw_hours": 24, "max_mb": 0, "red_days": 2}})
    c.export(otlp.encode([s for i in range(20) for s in chain(i, clock.now.timestamp() + i)]))
    clock.advance(minutes=5)
    c.traces.flush()
    red = count(c.wk, "trace_red")
    clock.advance(hours=25)
    c.export(otlp.encode([s for i in range(20, 30) for s in chain(i, clock.now.timestamp() + i)]))
    pruned = c.wk.prune()
    assert (pruned.spans, pruned.red_rows, count(c.wk, "spans")) == (60, 0, 30)
    clock.advance(days=2)
    pruned = c.wk.prune()
    assert (pruned.spans, pruned.red_rows, count(c.wk, "trace_red")) == (30, red, 0)
    assert "spans" in str(pruned)
    with c.wk.db.read() as conn:
        kinds = [r[0] for r in conn.execute(sa.text("SELECT kind FROM audit_log ORDER BY seq"))]
    assert kinds.count("retention.pruned") == 2 and c.wk.verify_audit().ok


def test_the_size_cap_prunes_the_oldest_spans_first(make_client: Callable[..., Client], clock: Clock) -> None:
    c = make_client(retention_days=0, traces={"retention": {"raw_hours": 0, "max_mb": 0.01, "red_days": 0}})
    for batch in range(4):  # about 4 x 7 KB of span rows; the cap is 10 KB
        c.export(otlp.encode([s for i in range(20) for s in chain(100 * batch + i, clock.now.timestamp() + i)]))
    pruned = c.traces.prune()
    with c.wk.db.read() as conn:
        left = conn.execute(sa.text("SELECT sum(size), min(trace_id) FROM spans")).one()
    assert pruned.spans > 0 and left[0] <= 0.01 * 1024 * 1024
    assert left[1] > f"{20:032x}"  # the first batch went first


def test_traces_can_be_switched_off(make_client: Callable[..., Client]) -> None:
    c = make_client(traces={"enabled": False})
    assert c.export((DATA / "sdk_export.pb").read_bytes()).status_code == 404


def test_the_correlator_joins_along_edges_seen_in_traces(
    make_client: Callable[..., Client], clock: Clock, tmp_path: Path,
) -> None:
    correlation = tmp_path / "correlation.yaml"
    correlation.write_text("strategies:\n  - type: labels\n    group_by: [service]\n  - type: topology\n    graph: {}\n")
    c = make_client(correlation_config=correlation, traces={"step_s": 60, "lateness_s": 1})

    def alert(service: str) -> list[int]:
        body = orjson.dumps({"service": service, "name": "HighLatency", "summary": f"{service} is slow",
                             "fingerprint": f"slow-{service}"})
        return c.wk.ingest("events", body, "application/json", "test").incidents

    before = alert("shop"), alert("stock")  # no edge known yet: two incidents
    assert before[0] != before[1]
    spans = [Span(f"{i + 1:032x}", f"{2 * i + 1:016x}", None, "web", "GET /", clock.now.timestamp() + i, 0.02,
                  False, "server") for i in range(5)]
    spans += [Span(f"{i + 1:032x}", f"{2 * i + 2:016x}", f"{2 * i + 1:016x}", "db", "SELECT", clock.now.timestamp() + i,
                   0.01, False, "server") for i in range(5)]
    c.export(otlp.encode(spans))
    clock.advance(minutes=3)
    c.traces.flush()
    assert c.traces.teach_correlation() == 0  # taught at the flush already
    db = alert("db")
    assert alert("web") == db  # web calls db (seen in traces): the caller's alert joins db's incident
    joined = c.get(f"/api/v1/incidents/{db[0]}").json()
    assert {a["service"]: a["reason"] for a in joined["alerts"]}["web"] == "topology"


def test_the_detectors_baselines_survive_a_restart(
    make_client: Callable[..., Client], make_service: Callable[..., Watchkeeper], db_url: str, clock: Clock,
) -> None:
    settings = {"traces": {"step_s": 60, "lateness_s": 1, "anomalies": {
        "detector": "robust", "options": {"window": 16, "season": "none", "warmup": 5}}}}
    c = make_client(**settings)
    for minute in range(20):
        t = clock.now.timestamp()
        c.export(otlp.encode([s for k in range(10) for s in chain(10 * minute + k, t + k)]))
        clock.advance(minutes=1)
    before = {m: e.keys for m, e in c.traces.anomalies.engines.items()} if c.traces.anomalies else {}
    assert before["latency_p95"] == ['trace.latency_p95{edge="web->db",service="db"}', 'trace.latency_p95{service="db"}',
                                     'trace.latency_p95{service="web"}']
    again = Traces(make_service(db_url, **settings))  # a restarted server: the same database
    again.flush()
    assert again.anomalies is not None
    assert {m: e.keys for m, e in again.anomalies.engines.items()} == before
    edge = again.anomalies.engines["latency_p95"]._series['trace.latency_p95{edge="web->db",service="db"}']
    assert edge.detector.to_state() == c.traces.anomalies.engines["latency_p95"]._series[
        'trace.latency_p95{edge="web->db",service="db"}'].detector.to_state()
