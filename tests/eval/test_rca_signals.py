"""``eval rca --format nezha`` with spans and logs: a day whose metrics are flat and whose two faults show
only in traces (a delay on the link into cartservice) and logs (checkoutservice starts logging errors)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from watchkeeper.cli import app
from watchkeeper.eval import nezha_signals
from watchkeeper.eval import rca as ev
from watchkeeper.eval.rca import service_of_pod
from watchkeeper.rca import LogAnomaly
from watchkeeper.rca.logs import log_anomalies

PODS = {"frontend": "frontend-579b9bff58-t2dbm", "cartservice": "cartservice-579f59597d-wc2lz",
        "checkoutservice": "checkoutservice-578fcf4766-9csqn"}
START = datetime(2022, 8, 22, 3, 0, tzinfo=UTC)
DELAY_AT, EXCEPTION_AT = 65, 95  # minutes after START (+40 s)
DAY = "2022-08-22"


def _write(path: Path, lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")


def _ns(t: datetime) -> int:
    return int(t.timestamp() * 1e9)


def make_day(root: Path) -> None:
    day = root / "rca_data" / DAY
    for sub in ("metric", "trace", "log"):
        (day / sub).mkdir(parents=True)
    rng = np.random.default_rng(5)
    for pod in PODS.values():
        rows = ["Time,TimeStamp,PodName,CpuUsageRate(%),MemoryUsageRate(%),PodServerLatencyP90(s)"]
        for i in range(130):
            t = START + timedelta(minutes=i, seconds=19)
            rows.append(f"{t:%Y-%m-%d %H:%M:%S}.1 +0000 UTC m=+0.1,{int(t.timestamp())},{pod},"
                        f"{20 + rng.normal(0, 1):.3f},{30 + rng.normal(0, 0.5):.3f},{0.05 + abs(rng.normal(0, 0.004)):.4f}")
        _write(day / "metric" / f"{pod}_metric.csv.gz", rows)
    faults = {"04": [
        {"inject_time": f"{START + timedelta(minutes=m, seconds=40):%Y-%m-%d %H:%M:%S}", "inject_pod": PODS[s],
         "inject_type": k, "inject_timestamp": "0"}
        for m, s, k in ((DELAY_AT, "cartservice", "network_delay"), (EXCEPTION_AT, "checkoutservice", "exception"))]}
    (day / f"{DAY}-fault_list.json").write_text(json.dumps(faults))
    # spans and logs for the minutes around each fault (and missing minutes in between, as in the data)
    for minute in [*range(DELAY_AT - 12, DELAY_AT + 4), *range(EXCEPTION_AT - 12, EXCEPTION_AT + 4)]:
        t0 = START + timedelta(minutes=minute)
        spans = ["TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration"]
        logs = ["Timestamp,TimeUnixNano,PodName,Log,SpanID,TraceID"]
        for k in range(40):
            t = t0 + timedelta(seconds=1.5 * k)
            tid = f"{minute:04d}{k:04d}"
            delayed = t >= START + timedelta(minutes=DELAY_AT, seconds=40) and minute < DELAY_AT + 4 \
                and minute >= DELAY_AT
            failing = minute >= EXCEPTION_AT and t >= START + timedelta(minutes=EXCEPTION_AT, seconds=40)
            net = 0.25 if delayed else 0.001 + abs(rng.normal(0, 0.0002))
            cart, check = 0.004 + abs(rng.normal(0, 0.0005)), 0.008 + abs(rng.normal(0, 0.001))
            root_d = 0.002 + net + cart + check + 0.002
            rows = [(f"{tid}a", "root", "frontend", "hipstershop.Frontend/Recv.", 0.0, root_d),
                    (f"{tid}b", f"{tid}a", "frontend", "hipstershop.CartService/GetCart", 0.001, cart + net),
                    (f"{tid}c", f"{tid}b", "cartservice", "hipstershop.CartService/GetCart", 0.001 + net / 2, cart),
                    (f"{tid}d", f"{tid}a", "frontend", "hipstershop.CheckoutService/PlaceOrder", 0.002 + cart + net,
                     check + 0.001),
                    (f"{tid}e", f"{tid}d", "checkoutservice", "hipstershop.CheckoutService/PlaceOrder",
                     0.0025 + cart + net, check)]
            for span, parent, svc, op, offset, dur in rows:
                start = _ns(t) + int(offset * 1e9)
                spans.append(f"{tid},{span},{parent},{PODS[svc]},{op},{start},{start + int(dur * 1e9)},"
                             f"{int(dur * 1e6)}")
            stamp = f"{t:%Y-%m-%dT%H:%M:%S.%f}000Z"
            inner = {"message": f"TraceID: {tid} SpanID: {tid}e PlaceOrder user_id={rng.integers(1e6)} successfully",
                     "severity": "info"}
            if failing and k % 2 == 0:
                inner = {"message": f"TraceID: {tid} SpanID: {tid}e failed to charge card: rpc error: code = "
                                    f"Unavailable desc = payment {rng.integers(1e4)} refused", "severity": "error"}
            logs.append(_csv(stamp, str(_ns(t)), PODS["checkoutservice"],
                             json.dumps({"log": json.dumps(inner) + "\n", "stream": "stdout", "time": stamp}),
                             f"{tid}e", tid))
            if minute == DELAY_AT and k == 30:  # the injector's own line names the fault: dropped
                logs.append(_csv(stamp, "-6", PODS["cartservice"], json.dumps({"log": "Inject cpu successfully\n"}),
                                 "", ""))
            logs.append(_csv(stamp, "-6", PODS["cartservice"],
                             json.dumps({"log": f"TraceID: {tid} SpanID: {tid}c GetCartAsync called with userId="
                                                f"{rng.integers(1e6)}\n", "stream": "stdout", "time": stamp}),
                             f"{tid}c", tid))
        suffix = ".csv.gz" if minute % 2 else ".csv"
        _write(day / "trace" / f"{t0:%H_%M}_trace{suffix}", spans)
        _write(day / "log" / f"{t0:%H_%M}_log{suffix}", logs)


def _csv(*cells: str) -> str:
    return ",".join('"' + c.replace('"', '""') + '"' for c in cells)


def test_spans_become_red_series_and_a_call_graph(tmp_path: Path) -> None:
    make_day(tmp_path)
    series, graph = nezha_signals.day_traces(tmp_path / "rca_data" / DAY, 30.0, service_of_pod, cache=None) or ({}, None)
    assert graph is not None and sorted(graph.edges) == [("frontend", "cartservice"), ("frontend", "checkoutservice")]
    assert graph["frontend"]["cartservice"]["calls"] == 32 * 40
    cart = series["cartservice"]
    assert {"trace.latency_p95", "trace.self_p95", "edge:frontend->cartservice.net_p95"} <= set(cart)
    t, v = cart["edge:frontend->cartservice.net_p95"]
    onset = (START + timedelta(minutes=DELAY_AT, seconds=40)).timestamp()
    assert np.nanmax(v[t <= onset]) < 0.01 and np.nanmax(v[t > onset + 30]) > 0.2


def test_logs_are_read_with_their_severity_and_time(tmp_path: Path) -> None:
    make_day(tmp_path)
    day = tmp_path / "rca_data" / DAY
    lines = [x for p in sorted((day / "log").iterdir()) for x in nezha_signals.read_logs(p, service_of_pod)]
    assert len(lines) == 32 * 40 * 2
    assert {x.service for x in lines} == {"checkoutservice", "cartservice"}
    assert not any("Inject" in x.message for x in lines)
    errors = [x for x in lines if x.severity == "ERROR"]
    assert errors and all(x.service == "checkoutservice" and "failed to charge card" in x.message for x in errors)
    assert min(x.at for x in lines) == (START + timedelta(minutes=DELAY_AT - 12)).timestamp()
    table = nezha_signals.day_logs(day, service_of_pod, cache=None)
    assert table is not None and len(table) == len(lines) and list(table.at) == sorted(x.at for x in lines)
    onset = (START + timedelta(minutes=EXCEPTION_AT, seconds=40)).timestamp()
    fast = table.anomalies(onset, 3600.0, 300.0)
    slow = log_anomalies([(x.at, x.service, x.severity, x.message) for x in lines], onset)
    assert fast == slow and fast["checkoutservice"].score > 3


def test_traces_and_logs_find_what_flat_metrics_cannot(tmp_path: Path) -> None:
    make_day(tmp_path)
    cases = ev.read_nezha(tmp_path, cache=tmp_path / "cache")
    assert [c.kind for c in cases] == ["network_delay", "exception"]
    assert all(c.has_traces for c in cases) and all(c.has_logs for c in cases)
    logged = cases[1].evidence.log_anomalies["checkoutservice"]
    assert isinstance(logged, LogAnomaly) and logged.templates[0]["severity"] == "ERROR"
    assert "failed to charge card" in logged.templates[0]["template"]
    outcomes = ev.run(cases)
    assert [o.rank for o in outcomes] == [1, 1]
    delay, exception = (o.causes[0].evidence["signals"] for o in outcomes)
    assert delay["traces"]["top"][0]["role"] == "link"
    assert exception["logs"]["score"] > 3
    # the second read comes from the cache and gives the same
    again = ev.read_nezha(tmp_path, cache=tmp_path / "cache")
    assert [o.rank for o in ev.run(again)] == [1, 1] and any((tmp_path / "cache").iterdir())


def test_cli_compares_metrics_only_with_all_signals(tmp_path: Path) -> None:
    make_day(tmp_path / "data")
    result = CliRunner().invoke(app, ["eval", "rca", "--format", "nezha", str(tmp_path / "data"), "--no-loo",
                                      "--json", "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)["signals"]
    assert (doc["faults"], doc["with_spans"], doc["with_logs"]) == (2, 2, 2)
    assert doc["all_signals"]["all"]["top1"] == 1.0
    assert doc["all_signals"]["all"]["by_kind"]["exception"]["n"] == 1
    result = CliRunner().invoke(app, ["eval", "rca", "--format", "nezha", str(tmp_path / "data"), "--no-loo",
                                      "--cache", str(tmp_path / "cache")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Signals: metrics only vs metrics + traces + logs" in result.output
    assert "By fault kind: metrics only → all signals" in result.output
    plain = CliRunner().invoke(app, ["eval", "rca", "--format", "nezha", str(tmp_path / "data"), "--no-loo",
                                     "--metrics-only", "--json"])
    assert json.loads(plain.output)["signals"] is None


def test_a_request_whose_child_is_the_frameworks_error_handler_failed(tmp_path: Path) -> None:
    """Status-less exports (no StatusCode column): Spring Boot's error handler inside a request marks it failed."""
    path = tmp_path / "10_00_trace.csv"
    path.write_text(
        "TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration\n"
        "t1,a,root,ts-gateway-6f6cfc45b-h5m2n,/*,1000000000000,1000020000000,20000\n"
        "t1,b,a,ts-preserve-b5ccf8557-j4txs,/api/v1/preserve,1000001000000,1000019000000,18000\n"
        "t1,c,b,ts-preserve-b5ccf8557-j4txs,PreserveController.preserve,1000002000000,1000010000000,8000\n"
        "t1,d,b,ts-preserve-b5ccf8557-j4txs,BasicErrorController.error,1000011000000,1000012000000,1000\n"
        "t2,e,root,ts-preserve-b5ccf8557-j4txs,/api/v1/preserve,1000030000000,1000031000000,1000\n")
    spans = {s.span_id: s for s in nezha_signals.read_spans(path, service_of_pod)}
    assert [k for k, s in sorted(spans.items()) if s.error] == ["b"]  # the request the handler served, only
    assert spans["d"].service == "ts-preserve" and spans["e"].error is False


def test_a_log_line_that_names_one_other_service_is_its_evidence_as_serve_attributes_it() -> None:
    from watchkeeper.eval.nezha_signals import LogLine, LogTable

    lines = [LogLine(100.0 + i, "frontend", "ERROR", f"call to cartservice failed after {i} ms") for i in range(20)]
    lines += [LogLine(100.0 + i, "frontend", "ERROR", "cartservice or checkoutservice: both failed") for i in range(5)]
    lines += [LogLine(100.0 + i, "cartservice", "INFO", f"GetCart user={i} total = quote.checkoutservice")
              for i in range(5)]
    lines += [LogLine(100.0, "checkoutservice", "INFO", "started")]
    table = LogTable.of(lines)
    writer = [table.services[i] for i in table.service]
    assert writer.count("cartservice") == 25  # the 20 lines naming it, and its own 5 (a dotted name is code)
    assert writer.count("frontend") == 5  # naming two services: still its writer's
    assert writer.count("checkoutservice") == 1
