"""``eval rca``: the Nezha and lab readers, top-k / Avg@k, reliability, LOO and the CLI, on small fixtures."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from watchkeeper.cli import app
from watchkeeper.errors import InputError
from watchkeeper.eval import rca as ev

runner = CliRunner()
WIDE = {"COLUMNS": "200"}
PODS = {"frontend": "frontend-579b9bff58-t2dbm", "cartservice": "cartservice-579f59597d-wc2lz",
        "checkoutservice": "checkoutservice-578fcf4766-9csqn"}
EDGES = [("frontend", "cartservice"), ("frontend", "checkoutservice"), ("checkoutservice", "cartservice")]


def _gz(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def make_nezha_day(root: Path, day: str, start: datetime, faults: list[tuple[int, str, str]], seed: int) -> None:
    """180 one-minute samples per pod; each fault (minute, service, kind) lifts CPU (cpu) or the callee's
    call latency (delay) for 4 minutes. One pod's TimeStamp column is offset by +200,000,000 s, as in the data."""
    metric = root / "rca_data" / day / "metric"
    metric.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    times = [start + timedelta(minutes=i, seconds=19.8) for i in range(180)]
    stamp = [t.strftime("%Y-%m-%d %H:%M:%S.%f") + "123 +0000 UTC m=+0.1" for t in times]
    lifted: dict[tuple[str, str], set[int]] = {}
    for minute, service, kind in faults:
        lifted.setdefault((service, kind), set()).update(range(minute, minute + 4))
    for service, pod in PODS.items():
        offset = 200_000_000 if service == "cartservice" else 0
        rows = ["Time,TimeStamp,PodName,CpuUsage(m),CpuUsageRate(%),MemoryUsageRate(%),PodServerLatencyP90(s),"
                "PodWorkload(Ops),PodSuccessRate(%)"]
        for i, (t, s) in enumerate(zip(times, stamp, strict=True)):
            cpu = 20 + rng.normal(0, 1.5) + (70 if i in lifted.get((service, "cpu_contention"), ()) else 0)
            rows.append(f"{s},{int(t.timestamp()) + offset},{pod},{cpu / 5:.3f},{cpu:.3f},"
                        f"{30 + rng.normal(0, 0.5):.3f},{0.05 + abs(rng.normal(0, 0.005)):.4f},9,0")
        _gz(metric / f"{pod}_metric.csv.gz", rows)
    cols = [f"{a}_{b}" for a, b in EDGES]
    for table in ("source_50", "destination_50"):
        rows = ["time,timestamp," + ",".join(cols)]
        for i, (t, s) in enumerate(zip(times, stamp, strict=True)):
            cells = []
            for _a, b in EDGES:
                slow = i in lifted.get((b, "network_delay"), ())
                cells.append("" if rng.uniform() < 0.02 else f"{0.004 + abs(rng.normal(0, 0.0005)) + (0.2 if slow else 0):.5f}")
            rows.append(f"{s},{int(t.timestamp())}," + ",".join(cells))
        _gz(metric / f"{table}.csv.gz", rows)
    rows = ["Time,TimeStamp,ServiceName,SuccessRate(%),LatencyP50(s),LatencyP90(s)"]
    rows += [f"{s},{int(t.timestamp())},Frontend,100,{0.1 + abs(rng.normal(0, 0.01)):.4f},0.3" for t, s in zip(times, stamp, strict=True)]
    _gz(metric / "front_service.csv.gz", rows)
    _gz(metric / "dependency.csv.gz", ["Source,Target,Weight", *(f"{a},{b},1" for a, b in EDGES),
                                       "frontend,33.33.33.167,1"])
    fault_list: dict[str, list[dict[str, str]]] = {}
    for minute, service, kind in faults:
        at = start + timedelta(minutes=minute, seconds=40)
        fault_list.setdefault(f"{at.hour:02d}", []).append({
            "inject_time": at.strftime("%Y-%m-%d %H:%M:%S"), "inject_timestamp": str(int(at.timestamp())),
            "inject_pod": PODS[service], "inject_type": kind})
    (root / "rca_data" / day / f"{day}-fault_list.json").write_text(json.dumps(fault_list, indent=4))


def make_nezha(root: Path) -> None:
    make_nezha_day(root, "2022-08-22", datetime(2022, 8, 22, 3, 0, tzinfo=UTC),
                   [(70, "cartservice", "cpu_contention"), (100, "checkoutservice", "cpu_contention"),
                    (130, "cartservice", "network_delay")], seed=1)
    make_nezha_day(root, "2022-08-23", datetime(2022, 8, 23, 12, 0, tzinfo=UTC),
                   [(80, "checkoutservice", "network_delay"), (120, "frontend", "cpu_contention")], seed=2)


def test_read_nezha(tmp_path: Path) -> None:
    make_nezha(tmp_path)
    cases = ev.read_nezha(tmp_path)
    assert [c.id for c in cases] == ["2022-08-22 04:10:40", "2022-08-22 04:40:40", "2022-08-22 05:10:40",
                                     "2022-08-23 13:20:40", "2022-08-23 14:00:40"]
    assert [c.truth for c in cases][:2] == ["cartservice", "checkoutservice"]
    first = cases[0]
    assert first.group == "2022-08-22" and first.kind == "cpu_contention"
    assert first.evidence.onset == datetime(2022, 8, 22, 4, 10, 40, tzinfo=UTC).timestamp()
    assert sorted(first.evidence.graph.edges) == sorted(EDGES)  # the IP-address targets are dropped
    cart = first.evidence.metrics["cartservice"]
    # the offset TimeStamp column is ignored: times come from `Time`
    assert cart["CpuUsageRate(%)"][0][0] == datetime(2022, 8, 22, 3, 0, 19, tzinfo=UTC).timestamp()
    assert "call_latency[frontend→source_50]" in cart
    assert "entry_SuccessRate(%)" in first.evidence.metrics["frontend"]
    assert "PodWorkload(Ops)" not in cart


def test_a_front_door_no_pod_backs_is_no_candidate(tmp_path: Path) -> None:
    """A system whose entry is a gateway by another name: the front_service table names "Frontend", no pod
    is called that, so no "frontend" candidate appears (it could only ever be a wrong answer)."""
    make_nezha(tmp_path)
    for pod in (tmp_path / "rca_data").glob("*/metric/frontend-*_metric.csv.gz"):
        pod.unlink()
    for day in (tmp_path / "rca_data").iterdir():
        fault_list = day / f"{day.name}-fault_list.json"
        doc = {hour: [f for f in faults if not f["inject_pod"].startswith("frontend-")]
               for hour, faults in json.loads(fault_list.read_text()).items()}
        fault_list.write_text(json.dumps(doc))
    cases = ev.read_nezha(tmp_path, traces=False, logs=False)
    assert cases and all("frontend" not in c.evidence.metrics for c in cases)
    assert all("frontend" not in o.ranking for o in ev.run(cases))


def test_rank_nezha_fixture_and_scores(tmp_path: Path) -> None:
    make_nezha(tmp_path)
    outcomes = ev.run(ev.read_nezha(tmp_path))
    assert [o.rank for o in outcomes] == [1, 1, 1, 1, 1]
    s = ev.summarize(outcomes)
    assert (s.n, s.top1, s.top3, s.avg5) == (5, 1.0, 1.0, 1.0)
    assert s.by_kind["network_delay"] == (2, 1.0, 1.0)
    bins = ev.reliability(outcomes)
    assert sum(b.count for b in bins) == 5 * 3 and sum(b.correct for b in bins) == 5
    loo = ev.leave_one_group_out(ev.read_nezha(tmp_path))
    assert [g for g, *_ in loo] == ["2022-08-22", "2022-08-23"]
    assert all(test.top1 == 1.0 for *_, test in loo)


def test_metrics() -> None:
    assert ev.topk([1, 0, 3, 2], 1) == 0.25  # 0 = the truth was not ranked at all
    assert ev.topk([1, 0, 3, 2], 3) == 0.75
    assert ev.avg_at_k([1, 1, 1], 5) == 1.0
    assert ev.topk([], 3) == 0.0


def test_reliability_bins_include_one_in_the_last_bin() -> None:
    class _C:
        def __init__(self, component: str, confidence: float) -> None:
            self.component, self.confidence = component, confidence

    class _O:
        def __init__(self, truth: str, causes: list[_C]) -> None:
            self.case = type("case", (), {"truth": truth})()
            self.causes = causes

    outcomes = [_O("a", [_C("a", 1.0), _C("b", 0.0)]), _O("a", [_C("b", 0.97), _C("a", 0.03)])]
    bins = ev.reliability(outcomes)  # type: ignore[arg-type]
    assert [(b.count, b.correct) for b in bins] == [(2, 1), (0, 0), (0, 0), (2, 1)]
    assert bins[-1].accuracy == 0.5 and bins[1].accuracy is None


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def make_lab(camp: Path, seed: int) -> None:
    """frontend → checkout → payment, checkout → cache; 5 s scrapes; three faults with the lab's signatures."""
    camp.mkdir(parents=True)
    (camp / "topology.json").write_text(json.dumps({
        "services": ["cache", "checkout", "frontend", "payment"],
        "edges": [["frontend", "checkout"], ["checkout", "payment"], ["checkout", "cache"]]}))
    t0 = 1_700_000_000.0
    t = t0 + np.arange(0, 3 * 3600, 5.0)
    rng = np.random.default_rng(seed)
    faults = [("f-1", "error_burst", "checkout", t0 + 3600), ("f-2", "bad_deploy", "payment", t0 + 5400),
              ("f-3", "crash", "cache", t0 + 7200), ("f-4", "cpu_hog", "frontend", t0 + 9000)]
    span = 300.0

    def active(target: str, kind: str) -> np.ndarray:
        m = np.zeros_like(t, dtype=bool)
        for _id, k, s, at in faults:
            if s == target and k == kind:
                m |= (t >= at) & (t < at + span)
        return m

    series = {}
    for s in ("frontend", "checkout", "payment", "cache"):
        series[s] = {"request_rate": 20 + rng.normal(0, 1, len(t)),
                     "error_ratio": np.clip(rng.normal(0.002, 0.002, len(t)), 0, 1),
                     "latency_p90_s": 0.05 + np.abs(rng.normal(0, 0.004, len(t))),
                     "cpu_rate": 0.1 + np.abs(rng.normal(0, 0.01, len(t))),
                     "rss_bytes": 50e6 + rng.normal(0, 1e5, len(t)),
                     "disk_used_ratio": np.full(len(t), 0.1), "up": np.ones(len(t))}
    # error burst at checkout: 50 % there, diluted 35 % at the frontend
    series["checkout"]["error_ratio"][active("checkout", "error_burst")] = 0.5
    series["frontend"]["error_ratio"][active("checkout", "error_burst")] = 0.35
    # bad deploy at payment: errors there, some at checkout and frontend
    series["payment"]["error_ratio"][active("payment", "bad_deploy")] = 0.6
    series["checkout"]["error_ratio"][active("payment", "bad_deploy")] = 0.3
    series["frontend"]["error_ratio"][active("payment", "bad_deploy")] = 0.25
    # cache crashes: down, no other values; checkout fails a quarter of requests
    down = active("cache", "crash")
    series["cache"]["up"][down] = 0.0
    for name in ("request_rate", "error_ratio", "latency_p90_s", "cpu_rate", "rss_bytes", "disk_used_ratio"):
        series["cache"][name][down] = np.nan
    series["checkout"]["error_ratio"][down] = 0.25
    series["frontend"]["error_ratio"][down] = 0.2
    series["frontend"]["cpu_rate"][active("frontend", "cpu_hog")] = 0.95
    series["frontend"]["latency_p90_s"][active("frontend", "cpu_hog")] = 0.09
    (camp / "metrics").mkdir()
    for s, cols in series.items():
        lines = ["timestamp," + ",".join(cols)]
        for i, ti in enumerate(t):
            lines.append(f"{ti:.3f}," + ",".join("nan" if np.isnan(v[i]) else f"{v[i]:.6g}" for v in cols.values()))
        (camp / "metrics" / f"{s}.csv").write_text("\n".join(lines) + "\n")
    with (camp / "faults.jsonl").open("w") as fh:
        for fid, kind, target, at in faults:
            fh.write(json.dumps({"id": fid, "fault": kind, "target": target, "started_at": iso(at),
                                 "duration_s": span, "ended_at": None, "detail": {}}) + "\n")
            fh.write(json.dumps({"id": fid, "ended_at": iso(at + span), "ended_by": "expiry"}) + "\n")
    (camp / "changes.jsonl").write_text(json.dumps({"at": iso(t0 + 5400 - 2), "service": "payment", "kind": "deploy",
                                                    "from_version": "v1", "to_version": "v2"}) + "\n")


def test_read_and_rank_lab(tmp_path: Path) -> None:
    make_lab(tmp_path / "c1", seed=3)
    cases = ev.read_lab(tmp_path / "c1")
    assert [(c.id, c.truth, c.kind) for c in cases] == [
        ("f-1", "checkout", "error_burst"), ("f-2", "payment", "bad_deploy"), ("f-3", "cache", "crash"),
        ("f-4", "frontend", "cpu_hog")]
    assert cases[1].evidence.changes[0].service == "payment"
    assert "request_rate" not in cases[0].evidence.metrics["frontend"]  # traffic is left out
    outcomes = ev.run(cases)
    assert [o.rank for o in outcomes] == [1, 1, 1, 1]
    assert "changes" in outcomes[1].causes[0].evidence
    assert outcomes[2].causes[0].evidence["top_metrics"][0]["metric"] == "up"


def test_lab_directory_of_campaigns_gives_groups(tmp_path: Path) -> None:
    make_lab(tmp_path / "a", seed=4)
    make_lab(tmp_path / "b", seed=5)
    cases = ev.read_lab(tmp_path)
    assert sorted({c.group for c in cases}) == ["a", "b"] and len(cases) == 8


@pytest.mark.parametrize(("name", "text", "match"), [
    ("faults.jsonl", "{nope\n", "not JSON"),
    ("faults.jsonl", '{"id": "f-1", "started_at": "2024-01-01T00:00:00Z"}\n', "needs 'id' and 'target'"),
    ("faults.jsonl", '{"id": "f-1", "target": "a", "started_at": "yesterday"}\n', "not an ISO-8601 time"),
])
def test_bad_lab_input_is_a_clear_error(tmp_path: Path, name: str, text: str, match: str) -> None:
    (tmp_path / "metrics").mkdir()
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=match):
        ev.read_lab(tmp_path)


def test_cli_nezha_writes_rankings_and_prints_tables(tmp_path: Path) -> None:
    make_nezha(tmp_path / "data")
    out = tmp_path / "rank.jsonl"
    result = runner.invoke(app, ["eval", "rca", "--format", "nezha", str(tmp_path / "data"), "--out", str(out)],
                           env=WIDE)
    assert result.exit_code == 0, result.output
    for text in ("top-1 %", "Avg@5 %", "Reliability", "Leave-one-group-out", "cpu_contention", "2022-08-23",
                 "baseline: BARO, every pod column", "random order"):
        assert text in result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["id"] == "2022-08-22 04:10:40" and rows[0]["ranking"][0] == "cartservice"
    assert len(rows) == 5 and all(len(r["ranking"]) == 3 for r in rows)


def test_cli_json_and_calibrate(tmp_path: Path) -> None:
    make_lab(tmp_path / "a", seed=6)
    make_lab(tmp_path / "b", seed=7)
    target = tmp_path / "calibration.json"
    result = runner.invoke(app, ["eval", "rca", "--format", "lab", str(tmp_path), "--json", "--calibrate",
                                 "--calibration-out", str(target)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["overall"]["n"] == 8 and doc["overall"]["top1"] == 1.0
    assert [x["test"] for x in doc["loo"]] == ["a", "b"]
    written = json.loads(target.read_text())
    assert written == doc["calibration"] and "lab" in written["fitted_on"]
    assert sum(b["count"] for b in doc["reliability"]) == 8 * 4


def test_faults_that_start_together_are_scored_within_their_set(tmp_path: Path) -> None:
    make_lab(tmp_path / "c", seed=3)
    faults = tmp_path / "c" / "faults.jsonl"
    t0 = 1_700_000_000.0  # f-2 (bad deploy at payment) now starts 2 s after f-1 (error burst at checkout)
    faults.write_text(faults.read_text().replace(iso(t0 + 5400), iso(t0 + 3602)))
    outcomes = ev.run(ev.read_lab(tmp_path / "c"))
    sets = ev.started_together(outcomes)
    assert [[o.case.id for o in group] for group in sets] == [["f-1", "f-2"]]
    n, share = ev.together_top(outcomes) or (0, 0.0)
    assert n == 2 and share == sum(0 < o.rank <= 2 for o in sets[0]) / 2
    assert ev.together_top([o for o in outcomes if o.case.id != "f-2"]) is None  # no fault had company
    result = runner.invoke(app, ["eval", "rca", "--format", "lab", str(tmp_path / "c"), "--no-loo", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["started_together"] == {"faults": 2, "within_set_size": share}
    result = runner.invoke(app, ["eval", "rca", "--format", "lab", str(tmp_path / "c"), "--no-loo"], env=WIDE)
    assert "Faults that started together (2) share one ranking" in result.output
    # early rankings: naming the pair's other fault is no mistake
    rows, first, wrong = ev.early(ev.read_lab(tmp_path / "c"), [300.0], trust=0.0)
    assert rows[0].trusted == 4 and rows[0].trusted_wrong == 0 and (first, wrong) == (4, 0)
    assert rows[0].right == 3  # one of the pair is not first


def test_cli_bad_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "rca", "--format", "nezha", str(tmp_path)])
    assert result.exit_code == 2 and "fault_list" in result.output
    result = runner.invoke(app, ["eval", "rca", "--format", "lab", str(tmp_path)])
    assert result.exit_code == 2 and "faults.jsonl" in result.output
    assert runner.invoke(app, ["eval", "rca", "--format", "csv", str(tmp_path)]).exit_code == 2


def test_plain_baro_reader_keeps_every_pod_column_and_no_call_tables(tmp_path: Path) -> None:
    make_nezha(tmp_path)
    cases = ev.read_nezha(tmp_path, pod_metrics=None, call_tables=False)
    cart = cases[0].evidence.metrics["cartservice"]
    assert {"CpuUsage(m)", "PodWorkload(Ops)", "PodSuccessRate(%)"} <= set(cart)
    assert not any(name.startswith("call_latency") for name in cart)
    assert "entry_SuccessRate(%)" not in cases[0].evidence.metrics["frontend"]


def test_early_rankings_see_only_what_was_there_and_count_trusted_mistakes(tmp_path: Path) -> None:
    """``eval rca --early``: each fault ranked on what a live ranker had so many seconds after its onset."""
    make_lab(tmp_path / "c", seed=3)
    cases = ev.read_lab(tmp_path / "c")
    burst = ev.seen_by(cases[0], 0.0)  # the onset's own scrape only: checkout's callees not seen after it
    assert all(float(t.max()) <= burst.evidence.onset for ms in burst.evidence.metrics.values() for t, _ in ms.values())
    top = ev.run([burst])[0].causes[0]
    assert top.component == "checkout" and top.evidence["doubts"]["callees_not_seen_yet"] == ["cache", "payment"]
    assert "doubts" not in ev.run([ev.seen_by(cases[0], 5.0)])[0].causes[0].evidence  # one 5-s scrape later
    assert [c.service for c in ev.seen_by(cases[1], 0.0).evidence.changes] == ["payment"]  # deployed 2 s before
    rows, first, wrong = ev.early(cases, [300.0, 0.0], trust=0.5)
    assert [r.after_s for r in rows] == [0.0, 300.0]
    assert rows[-1].ranked == 4 and rows[-1].right == sum(o.rank == 1 for o in ev.run(cases))
    assert all(r.trusted_wrong <= r.trusted <= r.ranked for r in rows)
    assert wrong <= first <= 4
    result = runner.invoke(app, ["eval", "rca", "--format", "lab", str(tmp_path / "c"), "--no-loo", "--json",
                                 "--early", "0,5,300", "--trust", "0.5"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)["early"]
    assert [r["after_s"] for r in doc["rows"]] == [0.0, 5.0, 300.0] and doc["trust"] == 0.5
    result = runner.invoke(app, ["eval", "rca", "--format", "lab", str(tmp_path / "c"), "--no-loo", "--early", "0,300"],
                           env=WIDE)
    assert result.exit_code == 0 and "Early rankings (4 faults" in result.output


@pytest.mark.parametrize("bad", ["soon", "-2", "nan", ","])
def test_early_needs_seconds(tmp_path: Path, bad: str) -> None:
    make_lab(tmp_path / "c", seed=3)
    result = runner.invoke(app, ["eval", "rca", "--format", "lab", str(tmp_path / "c"), "--no-loo", "--early", bad])
    assert result.exit_code == 2 and "--early" in result.output
