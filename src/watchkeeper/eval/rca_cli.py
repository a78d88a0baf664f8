"""``watchkeeper eval rca --format nezha|lab DIR``: root-cause ranking accuracy and the reliability table.

Mounted by the main CLI (the command function is :func:`rca`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from watchkeeper.eval import rca as ev
from watchkeeper.rca import Params
from watchkeeper.rca.calibration import CALIBRATION_FILE, LAB_CALIBRATION_FILE, load

_out = Console(highlight=False)


class Layout(StrEnum):
    nezha = "nezha"
    lab = "lab"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def _summary_table(title: str, rows: Sequence[tuple[str, ev.Summary]]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("set", "faults", "top-1 %", "top-3 %", "top-5 %", "Avg@5 %"):
        table.add_column(col, justify="left" if col == "set" else "right")
    for name, s in rows:
        table.add_row(name, str(s.n), _pct(s.top1), _pct(s.top3), _pct(s.top5), _pct(s.avg5))
    return table


def _reliability_table(title: str, bins: Sequence[ev.Bin]) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("confidence", "causes", "right", "accuracy %"):
        table.add_column(col, justify="right")
    for b in bins:
        table.add_row(f"[{b.low:.2f}, {b.high:.2f}{']' if b.high >= 1 else ')'}", str(b.count), str(b.correct),
                      _pct(b.accuracy))
    return table


def rca(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                              help="Nezha data set (or its rca_data) / a recorded lab campaign")],
    layout: Annotated[Layout, typer.Option("--format", help="Directory layout")] = Layout.nezha,
    out: Annotated[Path | None, typer.Option(help="Write per-fault rankings as JSONL {id, ranking: [...]}")] = None,
    loo: Annotated[bool, typer.Option("--loo/--no-loo", help="Also leave-one-group-out: tune the windows and "
                                                             "fit the calibration on the other days/campaigns")] = True,
    calibrate: Annotated[bool, typer.Option("--calibrate", help="Refit the confidence model on these faults and "
                                                                "write it (see --calibration-out)")] = False,
    calibration_out: Annotated[Path | None, typer.Option(
        help="Where --calibrate writes (default: the package's rca/calibration.json, or calibration_lab.json "
             "for --format lab)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables")] = False,
    signals: Annotated[bool, typer.Option(
        "--signals/--metrics-only",
        help="Also read the spans and logs when present (nezha: trace/, log/; lab: spans.jsonl, logs/)")] = True,
    cache: Annotated[Path, typer.Option(help="Where parsed spans and logs are cached")] = Path(
        ".watchkeeper-cache/eval-rca"),
    early: Annotated[str | None, typer.Option(
        help="Also rank every fault as seen these many seconds after its onset (comma-separated, e.g. "
             "2,4,6,10,30): how often a ranking that early is trusted (--trust) and wrong")] = None,
    trust: Annotated[float, typer.Option(min=0.0, max=1.0, help="The confidence a policy acts on, for --early")] = 0.95,
) -> None:
    """Service-level top-1/3/5 and Avg@5 of the root-cause ranking, per fault kind, with the reliability
    table of its confidences; leave-one-group-out figures are tuned and calibrated without the test group."""
    cases = (ev.read_nezha(directory, traces=signals, logs=signals, cache=cache) if layout is Layout.nezha
             else ev.read_lab(directory, signals=signals))
    if not cases:
        raise typer.BadParameter(f"{directory}: no labelled faults found")
    calibration: dict[str, Any] = load(layout.value)
    outcomes = ev.run(cases, calibration=calibration)
    if calibrate:
        fitted = ev.calibrate(outcomes)
        fitted["fitted_on"] = f"{layout.value}: {directory.name} ({len(cases)} faults, groups "\
                              f"{', '.join(sorted({c.group for c in cases}))}), default Params"
        target = calibration_out or (LAB_CALIBRATION_FILE if layout is Layout.lab else CALIBRATION_FILE)
        target.write_text(json.dumps(fitted, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        calibration = fitted
        outcomes = ev.run(cases, calibration=calibration)
    overall = ev.summarize(outcomes)
    groups = sorted({c.group for c in cases})
    per_group = [(g, ev.summarize([o for o in outcomes if o.case.group == g])) for g in groups]
    baselines = [("random order (expected)", _random_summary(cases))]
    if layout is Layout.nezha:
        plain = ev.read_nezha(directory, pod_metrics=None, call_tables=False, traces=False, logs=False)
        baselines.insert(0, ("baseline: BARO, every pod column", ev.summarize(ev.run(plain))))
    loo_rows: list[tuple[str, Params, ev.Summary, ev.Summary]] = ev.leave_one_group_out(cases) if loo else []
    held_out: list[ev.Outcome] = []
    for g, params, _train, _test in loo_rows:
        train = [o for o in outcomes if o.case.group != g]
        fitted_g = ev.calibrate(ev.run([o.case for o in train], params))
        held_out += ev.run([c for c in cases if c.group == g], params, fitted_g)
    compare = _signal_comparison(cases, outcomes, loo) if any(c.has_traces or c.has_logs for c in cases) else None
    early_doc = _early(cases, early, trust, calibration) if early else None
    if out is not None:
        with out.open("w", encoding="utf-8") as fh:
            ev.write_rankings(outcomes, fh)
    if as_json:
        doc = {
            "overall": _summary_doc(overall),
            "groups": {g: _summary_doc(s) for g, s in per_group},
            "baselines": {name: _summary_doc(s) for name, s in baselines},
            "by_kind": {k: {"n": n, "top1": t1, "top3": t3} for k, (n, t1, t3) in overall.by_kind.items()},
            "reliability": [_bin_doc(b) for b in ev.reliability(outcomes)],
            "loo": [{"test": g, "reference_s": p.reference_s, "window_s": p.window_s, "tuned_on": _summary_doc(a),
                     "test_result": _summary_doc(b)} for g, p, a, b in loo_rows],
            "loo_reliability": [_bin_doc(b) for b in ev.reliability(held_out)] if held_out else None,
            "calibration": calibration,
            "signals": compare,
            "started_together": _together_doc(outcomes),
            "early": early_doc,
        }
        _out.print(json.dumps(doc), markup=False, soft_wrap=True)
        return
    _out.print(_summary_table(f"Root-cause ranking, {layout.value} (default windows: reference 3600 s, after 300 s)",
                              [("all", overall), *per_group, *baselines]))
    kinds = Table(title="By fault kind", title_justify="left")
    for col in ("kind", "faults", "top-1 %", "top-3 %"):
        kinds.add_column(col, justify="left" if col == "kind" else "right")
    for k, (n, t1, t3) in sorted(overall.by_kind.items()):
        kinds.add_row(k, str(n), _pct(t1), _pct(t3))
    _out.print(kinds)
    together = ev.together_top(outcomes)
    if together is not None:
        _out.print(f"Faults that started together ({together[0]}) share one ranking, so top-1 counts one of each "
                   f"set: truth within the first n, n = faults in its set, {_pct(together[1])} %", markup=False)
    _out.print(_reliability_table("Reliability of the confidences (every ranked cause)",
                                  ev.reliability(outcomes)))
    if loo_rows:
        _out.print(_summary_table("Leave-one-group-out (windows tuned on the rest)",
                                  [(f"test {g} ({p.reference_s:.0f}/{p.window_s:.0f} s)", b)
                                   for g, p, _a, b in loo_rows]
                                  + [(f"tuned-on, not {g}", a) for g, _p, a, _b in loo_rows]))
        _out.print(_reliability_table("Reliability, held out (calibrated on the rest)",
                                      ev.reliability(held_out)))
    if compare is not None:
        _print_comparison(compare)
    if early_doc is not None:
        _print_early(early_doc)
    if calibrate:
        _out.print(f"calibration written to {target}", markup=False)
    if out is not None:
        _out.print(f"rankings written to {out}", markup=False)


def _together_doc(outcomes: Sequence[ev.Outcome]) -> dict[str, Any] | None:
    together = ev.together_top(outcomes)
    return None if together is None else {"faults": together[0], "within_set_size": together[1]}


def _random_summary(cases: Sequence[ev.Case]) -> ev.Summary:
    """What a uniformly random order of the candidates scores on average: top-k = k / candidates."""
    sizes = [max(1, len(set(c.evidence.metrics) | set(c.evidence.graph.nodes))) for c in cases]

    def top(k: int) -> float:
        return sum(min(1.0, k / n) for n in sizes) / len(sizes)

    return ev.Summary(len(cases), top(1), top(3), top(5), sum(top(k) for k in range(1, 6)) / 5)


def _summary_doc(s: ev.Summary) -> dict[str, float]:
    return {"n": s.n, "top1": s.top1, "top3": s.top3, "top5": s.top5, "avg5": s.avg5}


def _bin_doc(b: ev.Bin) -> dict[str, Any]:
    return {"low": b.low, "high": b.high, "count": b.count, "correct": b.correct, "accuracy": b.accuracy}


def _signal_comparison(cases: Sequence[ev.Case], outcomes: Sequence[ev.Outcome], loo: bool) -> dict[str, Any]:
    """Metrics only against metrics + traces (+ logs): over every fault, over the faults whose evidence
    window has spans, per fault kind; and held out by group (the signal knobs tuned on the others)."""
    plain = ev.run([c.metrics_only() for c in cases])
    traced = [i for i, c in enumerate(cases) if c.has_traces]
    at_onset = [i for i, c in enumerate(cases) if c.spans_at_onset]
    logged = [i for i, c in enumerate(cases) if c.has_logs]

    def doc(rows: Sequence[ev.Outcome]) -> dict[str, Any]:
        s = ev.summarize(rows)
        return _summary_doc(s) | {"by_kind": {k: {"n": n, "top1": t1, "top3": t3}
                                              for k, (n, t1, t3) in s.by_kind.items()}}

    out: dict[str, Any] = {
        "faults": len(cases), "with_spans": len(traced), "with_spans_at_onset": len(at_onset),
        "with_logs": len(logged),
        "metrics_only": {"all": doc(plain), "with_spans": doc([plain[i] for i in traced]),
                         "with_spans_at_onset": doc([plain[i] for i in at_onset])},
        "all_signals": {"all": doc(outcomes), "with_spans": doc([outcomes[i] for i in traced]),
                        "with_spans_at_onset": doc([outcomes[i] for i in at_onset])},
        "held_out": [],
    }
    if loo:
        for g, p, train, _test in ev.leave_one_group_out(cases, ev.SIGNAL_GRID):
            test_cases = [c for c in cases if c.group == g]
            test_out = ev.run(test_cases, p)
            with_spans = [o for o in test_out if o.case.has_traces]
            plain_test = ev.run([c.metrics_only() for c in test_cases])
            out["held_out"].append({
                "test": g, "params": {k: getattr(p, k) for k in ev.SIGNAL_GRID},
                "tuned_on": _summary_doc(train), "test_result": doc(test_out),
                "test_with_spans_by_kind": doc(with_spans)["by_kind"] if with_spans else None,
                "test_with_spans": _summary_doc(ev.summarize(with_spans)) if with_spans else None,
                "metrics_only_test": _summary_doc(ev.summarize(plain_test)),
                "metrics_only_test_with_spans": _summary_doc(ev.summarize(
                    [o for o, c in zip(plain_test, test_cases, strict=True) if c.has_traces])) if with_spans else None,
            })
    return out


def _print_comparison(doc: dict[str, Any]) -> None:
    table = Table(title=f"Signals: metrics only vs metrics + traces + logs ({doc['faults']} faults; "
                        f"{doc['with_spans']} with spans in the window after the onset, "
                        f"{doc['with_spans_at_onset']} in the onset's minute; {doc['with_logs']} with logs)",
                  title_justify="left")
    for col in ("set", "faults", "top-1 %", "top-3 %", "top-5 %", "Avg@5 %"):
        table.add_column(col, justify="left" if col == "set" else "right")
    for label, key in (("metrics only", "metrics_only"), ("metrics + traces + logs", "all_signals")):
        for subset in ("all", "with_spans", "with_spans_at_onset"):
            d = doc[key][subset]
            table.add_row(f"{label}, {subset.replace('_', ' ')}", str(d["n"]), _pct(d["top1"]), _pct(d["top3"]),
                          _pct(d["top5"]), _pct(d["avg5"]))
    for h in doc["held_out"]:
        knobs = ", ".join(f"{k}={v:g}" for k, v in h["params"].items())
        for label, d in (("all signals", h["test_result"]), ("metrics only", h["metrics_only_test"]),
                         ("all signals, with spans", h["test_with_spans"]),
                         ("metrics only, with spans", h["metrics_only_test_with_spans"])):
            if d is not None:
                table.add_row(f"held out: test {h['test']}, {label} ({knobs})" if label == "all signals"
                              else f"held out: test {h['test']}, {label}", str(d["n"]), _pct(d["top1"]),
                              _pct(d["top3"]), _pct(d["top5"]), _pct(d["avg5"]))
    _out.print(table)
    kinds = Table(title="By fault kind: metrics only → all signals (top-1 / top-3 %)", title_justify="left")
    for col in ("kind", "faults", "metrics only", "all signals", "with spans", "metrics only, with spans",
                "all signals, with spans"):
        kinds.add_column(col, justify="left" if col == "kind" else "right")
    m_all, s_all = doc["metrics_only"]["all"]["by_kind"], doc["all_signals"]["all"]["by_kind"]
    m_sp, s_sp = doc["metrics_only"]["with_spans"]["by_kind"], doc["all_signals"]["with_spans"]["by_kind"]

    def pair(d: dict[str, Any] | None) -> str:
        return "—" if d is None else f"{_pct(d['top1'])} / {_pct(d['top3'])}"

    for k in sorted(m_all):
        kinds.add_row(k, str(m_all[k]["n"]), pair(m_all[k]), pair(s_all.get(k)), str(m_sp.get(k, {}).get("n", 0)),
                      pair(m_sp.get(k)), pair(s_sp.get(k)))
    _out.print(kinds)


def _early(cases: Sequence[ev.Case], spec: str, trust: float, calibration: dict[str, Any]) -> dict[str, Any]:
    try:
        after = sorted({float(x) for x in spec.split(",") if x.strip()})
    except ValueError:
        raise typer.BadParameter(f"--early {spec!r}: give seconds after the onset, comma-separated (2,4,6,10)"
                                 ) from None
    if not after or any(a < 0 or not math.isfinite(a) for a in after):
        raise typer.BadParameter(f"--early {spec!r}: give at least one finite number of seconds, none negative")
    rows, first, first_wrong = ev.early(cases, after, trust, calibration=calibration)
    return {"trust": trust, "faults": len(cases), "first_trusted": first, "first_trusted_wrong": first_wrong,
            "rows": [{"after_s": r.after_s, "ranked": r.ranked, "right": r.right, "trusted": r.trusted,
                      "trusted_wrong": r.trusted_wrong} for r in rows]}


def _print_early(doc: dict[str, Any]) -> None:
    table = Table(title=f"Early rankings ({doc['faults']} faults; trusted = top confidence ≥ {doc['trust']:g}): "
                        f"the first trusted ranking of {doc['first_trusted']} faults, "
                        f"{doc['first_trusted_wrong']} of them wrong (a top cause none of the faults that "
                        f"started together)", title_justify="left")
    for col in ("s after onset", "ranked", "top-1 right", "trusted", "trusted, wrong"):
        table.add_column(col, justify="right")
    for r in doc["rows"]:
        table.add_row(f"{r['after_s']:g}", str(r["ranked"]), str(r["right"]), str(r["trusted"]),
                      str(r["trusted_wrong"]))
    _out.print(table)
