"""Correlation quality per strategy set on the recorded lab traffic.

For each config in ``configs/`` it runs, as a user would::

    watchkeeper replay webhooks.jsonl --out INCIDENTS --correlation CONFIG.yaml
    watchkeeper eval correlation INCIDENTS truth.jsonl --payloads webhooks.jsonl --json

and prints one table (strategy set → alerts, incidents, compression, pairwise precision, recall,
F1, purity), plus the two baselines "one incident per alert" and "one incident per Alertmanager
groupKey"; then the same restricted to the scenarios with concurrent unrelated faults (the storm
target of the issue: compression ≥ 0.80 with pairwise precision ≥ 0.95).

    .venv/bin/python benchmarks/correlation_lab/evaluate.py [--data benchmarks/data/correlation]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONFIGS = ["service-only", "labels-text", "labels-topology-hops1", "labels-topology", "labels-topology-text"]
BASELINES = {"one incident per alert": "baseline: one incident per alert",
             "one incident per Alertmanager group": "baseline: one incident per AM groupKey"}
TARGET_COMPRESSION, TARGET_PRECISION = 0.80, 0.95


def run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(argv)}` exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def evaluate(wk: str, incidents: Path, truth: Path, payloads: Path, unlabelled: str) -> dict[str, Any]:
    out = run([wk, "eval", "correlation", str(incidents), str(truth), "--payloads", str(payloads), "--json",
               "--unlabelled", unlabelled])
    return {g["name"]: g for g in json.loads(out)["groupings"]}


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def table(title: str, rows: list[tuple[str, dict[str, Any]]]) -> str:
    head = ("strategy set", "alerts", "incidents", "compression", "precision", "recall", "F1", "purity", "target")
    body = []
    for name, s in rows:
        meets = (s["compression"] or 0) >= TARGET_COMPRESSION and (s["precision"] or 0) >= TARGET_PRECISION
        body.append((name, str(s["alerts"]), str(s["incidents"]), fmt(s["compression"]), fmt(s["precision"]),
                     fmt(s["recall"]), fmt(s["f1"]), fmt(s["purity"]), "yes" if meets else "no"))
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                              strict=True)))

    rule = "-" * len(line(head))
    return "\n".join([title, rule, line(head), rule, *(line(r) for r in body), rule])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "benchmarks" / "data" / "correlation")
    parser.add_argument("--configs", type=Path, default=HERE / "configs")
    parser.add_argument("--watchkeeper", default=str(Path(sys.executable).parent / "watchkeeper"))
    parser.add_argument("--json", action="store_true", help="print the scores as one JSON object")
    args = parser.parse_args()
    webhooks, truth_path = args.data / "webhooks.jsonl", args.data / "truth.jsonl"
    scenarios = json.loads((args.data / "scenarios.json").read_text())
    concurrent_epochs = {i for i, e in enumerate(scenarios["timeline"], start=1) if len(e["faults"]) > 1}
    concurrent_faults = {f["id"] for i in concurrent_epochs for f in scenarios["timeline"][i - 1]["faults"]}
    results: dict[str, dict[str, dict[str, Any]]] = {"all": {}, "concurrent": {}}
    with tempfile.TemporaryDirectory(prefix="correlation-eval-") as tmp:
        subset = Path(tmp) / "truth-concurrent.jsonl"
        rows = [json.loads(line) for line in truth_path.read_text().splitlines() if line.strip()]
        subset.write_text("".join(json.dumps(r) + "\n" for r in rows if r["group"] in concurrent_faults))
        for name in CONFIGS:
            incidents = Path(tmp) / f"{name}.incidents.jsonl"
            run([args.watchkeeper, "replay", str(webhooks), "--out", str(incidents),
                 "--correlation", str(args.configs / f"{name}.yaml")])
            for scope, truth, unlabelled in (("all", truth_path, "singleton"), ("concurrent", subset, "drop")):
                scores = evaluate(args.watchkeeper, incidents, truth, webhooks, unlabelled)
                results[scope][name] = scores["watchkeeper"]
                for key, label in BASELINES.items():
                    if key in scores:
                        results[scope][label] = scores[key]
    for scope, kept in (("all", rows), ("concurrent", [r for r in rows if r["group"] in concurrent_faults])):
        groups = len({r["group"] for r in kept})
        results[scope]["ceiling: the ground truth itself"] = {
            "alerts": len(kept), "incidents": groups, "compression": 1 - groups / len(kept) if kept else None,
            "precision": 1.0, "recall": 1.0, "f1": 1.0, "purity": 1.0}
    if args.json:
        print(json.dumps(results))
        return
    order = ["ceiling: the ground truth itself", *BASELINES.values(), *CONFIGS]
    n = len(scenarios["timeline"])
    print(table(f"All {n} scenarios ({len(rows)} labelled fingerprints, {webhooks})",
                [(k, results["all"][k]) for k in order if k in results["all"]]))
    print()
    names = ", ".join(scenarios["timeline"][i - 1]["scenario"] for i in sorted(concurrent_epochs))
    print(table(f"Concurrent unrelated faults only (scenarios: {names}; other alerts dropped)",
                [(k, results["concurrent"][k]) for k in order if k in results["concurrent"]]))
    print(f"\ntarget: compression >= {TARGET_COMPRESSION:.2f} with pairwise precision >= {TARGET_PRECISION:.2f}")


if __name__ == "__main__":
    main()
