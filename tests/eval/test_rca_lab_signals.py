"""``eval rca --format lab`` with the campaign's spans and logs: read through serve's RED rows, each fault
seeing only what was written by its end. A tiny hand-made campaign whose metrics say nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from watchkeeper.eval import lab_signals
from watchkeeper.eval import rca as ev

T0 = 1_700_000_000.0
ONSET = T0 + 900.0
END = ONSET + 60.0


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def span(
    tid: str,
    sid: str,
    parent: str | None,
    service: str,
    op: str,
    start: float,
    dur: float,
    kind: str,
    peer: str | None = None,
) -> str:
    return json.dumps(
        {
            "trace_id": tid,
            "span_id": sid,
            "parent_id": parent,
            "service": service,
            "operation": op,
            "start": start,
            "duration": dur,
            "error": False,
            "kind": kind,
            "status_code": None,
            "peer": peer,
        }
    )


def make_campaign(camp: Path) -> None:
    """frontend → checkout → (payment, then cache). From the onset to the end, checkout gives up after
    payment answers (a wrong value): no error status anywhere, metrics flat."""
    camp.mkdir(parents=True)
    (camp / "topology.json").write_text(
        json.dumps(
            {
                "services": ["cache", "checkout", "frontend", "payment"],
                "edges": [["frontend", "checkout"], ["checkout", "payment"], ["checkout", "cache"]],
            }
        )
    )
    rng = np.random.default_rng(1)
    t = T0 + np.arange(0.0, 1100.0, 2.0)
    (camp / "metrics").mkdir()
    for s in ("frontend", "checkout", "payment", "cache"):
        rows = ["timestamp,error_ratio,latency_p90_s,cpu_rate"]
        rows += [f"{x:.1f},0,{0.05 + rng.normal(0, 0.002):.5f},{0.1 + rng.normal(0, 0.005):.5f}" for x in t]
        (camp / "metrics" / f"{s}.csv").write_text("\n".join(rows) + "\n")
    lines = []
    for i, at in enumerate(T0 + np.arange(0.0, 1100.0, 1.0)):
        tid, stop = f"t{i}", ONSET <= at < END
        lines += [
            span(tid, f"{tid}a", None, "frontend", "GET /buy", at, 0.05, "server"),
            span(tid, f"{tid}b", f"{tid}a", "frontend", "checkout", at + 0.001, 0.04, "client", "checkout"),
            span(tid, f"{tid}c", f"{tid}b", "checkout", "POST /buy", at + 0.002, 0.035, "server"),
            span(tid, f"{tid}d", f"{tid}c", "checkout", "payment", at + 0.003, 0.01, "client", "payment"),
            span(tid, f"{tid}e", f"{tid}d", "payment", "POST /pay", at + 0.004, 0.008, "server"),
        ]
        if not stop:
            lines += [
                span(tid, f"{tid}f", f"{tid}c", "checkout", "cache", at + 0.02, 0.01, "client", "cache"),
                span(tid, f"{tid}g", f"{tid}f", "cache", "GET /item", at + 0.021, 0.008, "server"),
            ]
    (camp / "spans.jsonl").write_text("\n".join(lines) + "\n")
    (camp / "logs").mkdir()
    (camp / "logs" / "payment.log").write_text(
        "".join(
            json.dumps({"time": iso(at), "level": "info", "message": f"charged order {i}"}) + "\n"
            for i, at in enumerate(T0 + np.arange(0.0, 1100.0, 5.0))
        )
        + "".join(
            json.dumps({"time": iso(at), "level": "error", "message": f"order {i}: total does not add up"}) + "\n"
            for i, at in enumerate(ONSET + np.arange(0.0, 60.0, 2.0))
        )
    )
    with (camp / "faults.jsonl").open("w") as fh:
        fh.write(
            json.dumps(
                {
                    "id": "f-1",
                    "fault": "wrong_value",
                    "target": "payment",
                    "started_at": iso(ONSET),
                    "duration_s": 60,
                    "ended_at": None,
                    "detail": {},
                }
            )
            + "\n"
        )
        fh.write(json.dumps({"id": "f-1", "ended_at": iso(END), "ended_by": "expiry"}) + "\n")


def test_lab_spans_and_logs_are_evidence_up_to_the_fault_s_end(tmp_path: Path) -> None:
    make_campaign(tmp_path / "c")
    [case] = ev.read_lab(tmp_path / "c")
    assert case.has_traces and case.has_logs
    traces = case.evidence.traces
    assert "edge:checkout->payment.last_share" in traces["payment"]
    assert max(t.max() for per in traces.values() for t, _ in per.values()) <= END  # nothing after the end
    assert ("checkout", "payment") in case.evidence.trace_graph.edges  # type: ignore[union-attr]
    assert case.evidence.log_anomalies["payment"].templates[0]["template"] == "order <*>: total does not add up"
    [outcome] = ev.run([case])
    assert outcome.ranking[0] == "payment"
    top = outcome.causes[0].evidence["signals"]["traces"]["top"][0]
    assert top["metric"] == "edge:checkout->payment.last_share"
    [plain] = ev.run(ev.read_lab(tmp_path / "c", signals=False))  # the metrics alone say nothing
    assert plain.case.evidence.traces == {} and plain.ranking[0] != "payment"


def test_stored_rows_match_the_batch_series(tmp_path: Path) -> None:
    make_campaign(tmp_path / "c")
    spans = lab_signals.read_spans(tmp_path / "c" / "spans.jsonl")
    assert spans[1].peer == "checkout" and spans[1].kind == "client"
    series = lab_signals.series_until(lab_signals.stored_rows(spans), None)
    t, share = series["payment"]["edge:checkout->payment.last_share"]
    assert share[t <= ONSET].max() == 0.0 and share[(t > ONSET + 10) & (t <= END)].min() == 1.0


def test_a_log_line_naming_one_other_service_is_that_service_s_evidence() -> None:
    lines = [(ONSET + i, "checkout", "ERROR", f"call to payment GET / failed: refused {i}") for i in range(20)]
    lines += [(T0 + i, "payment", "INFO", f"charged {i}") for i in range(0, 900, 10)]
    found = lab_signals.log_evidence(sorted(lines), ONSET, None, 900.0, 60.0)
    assert set(found) == {"payment"}  # as serve's log evidence attributes it, not to checkout that wrote it
