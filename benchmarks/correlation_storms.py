"""Correlation quality on the generated storms of ``benchmarks/data/storms`` (see ``storms.py``):
held-out storms first, then the tuning storms, per configuration.

Each storm is replayed in process with the same pipeline as ``watchkeeper replay`` and scored with
:func:`watchkeeper.eval.correlation.score`; the figures of a split pool the pair counts of its storms
(compression = 1 - incidents / alerts over the whole split). Configurations: the default
(no configuration at all), the default plus the true service graph (topology, 1 and 2 hops), and the
baselines "one incident per alert", "one incident per Alertmanager group" and the oracle (the ground
truth itself). It also counts joins per reason, and how many of them were right (the alert joined an
incident whose first alert has the same ground-truth group): each strategy's contribution.

    .venv/bin/python benchmarks/correlation_storms.py [--data benchmarks/data/storms] [--json] [--ablation]
    .venv/bin/python benchmarks/correlation_storms.py --data DIR --errors "default + graph (1 hop)"
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from watchkeeper.correlate import Mentions
from watchkeeper.correlate.config import CorrelationConfig
from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.eval.correlation import Scores, ablation, groupkey_clusters, one_per_alert, read_truth, score
from watchkeeper.replay import incident_records, replay
from watchkeeper.sources import registry

HERE = Path(__file__).resolve().parent
TARGET_COMPRESSION, TARGET_PRECISION = 0.80, 0.95


#: the splits, in the order they are reported: held-out storms first (never used to choose a parameter)
SPLITS = {
    "lab-held-out": "recorded lab storms, held out (real Prometheus + Alertmanager; never used to choose a parameter)",
    "rich-held-out": "rich held-out storms (several rules per fault; never used to choose a parameter)",
    "held-out": "held-out storms (never used to choose a parameter)",
    "rich-tuning": "rich tuning storms",
    "tuning": "tuning storms",
    "lab-tuning": "recorded lab storms, tuning",
}


def configs(graph: dict[str, list[str]]) -> dict[str, PipelineConfig]:
    """The default, and the default plus the true service graph (``graph:`` in the config)."""

    def with_graph(hops: int) -> PipelineConfig:
        return CorrelationConfig.model_validate({"graph": graph, "hops": hops}).pipeline()

    return {
        "default": PipelineConfig(),
        "default + graph (1 hop)": with_graph(1),
        "default + graph (2 hops)": with_graph(2),
        "labels + topology (2 hops), as the issue's table": CorrelationConfig.model_validate(
            {
                "strategies": [
                    {"type": "labels", "group_by": ["service"]},
                    {"type": "topology", "hops": 2, "graph": graph},
                ]
            }
        ).pipeline(),
    }


def pool(name: str, parts: list[Scores]) -> dict[str, Any]:
    alerts = sum(p.alerts for p in parts)
    incidents = sum(p.incidents for p in parts)
    predicted = sum(p.pairs_predicted for p in parts)
    true = sum(p.pairs_true for p in parts)
    correct = sum(p.pairs_correct for p in parts)
    return {
        "name": name,
        "alerts": alerts,
        "incidents": incidents,
        "compression": 1 - incidents / alerts if alerts else None,
        "precision": correct / predicted if predicted else None,
        "recall": correct / true if true else None,
        "storms_precision_ge_095": sum(1 for p in parts if p.precision is None or p.precision >= 0.95),
    }


def evaluate(data: Path, storms: list[str], graph: dict[str, list[str]]) -> dict[str, Any]:
    sources = registry(plugins=False)
    rows: dict[str, list[Scores]] = {}
    joins: dict[str, Counter[str]] = {}
    right: dict[str, Counter[str]] = {}
    for storm in storms:
        payloads = data / f"{storm}.jsonl"
        truth = read_truth((data / f"{storm}.truth.jsonl").read_bytes())
        for name, config in configs(graph).items():
            with payloads.open("rb") as fh:
                result = replay(fh, sources, config)
            records = list(incident_records(result))
            clusters = [[a["fingerprint"] for a in r["alerts"]] for r in records]
            rows.setdefault(name, []).append(score(name, clusters, truth))
            if name == "default":
                rows.setdefault("baseline: one incident per alert", []).append(
                    score("one", one_per_alert(clusters), truth)
                )
                with payloads.open("rb") as fh:
                    groups = groupkey_clusters(fh, sources) or []
                rows.setdefault("baseline: one incident per Alertmanager group", []).append(score("am", groups, truth))
                by_group: dict[Hashable, list[str]] = {}
                for fp, g in truth.items():
                    by_group.setdefault(g, []).append(fp)
                rows.setdefault("oracle (the ground truth)", []).append(score("oracle", list(by_group.values()), truth))
            count, ok = joins.setdefault(name, Counter()), right.setdefault(name, Counter())
            for r in records:
                first = truth.get(r["alerts"][0]["fingerprint"]) if r["alerts"] else None
                for a in r["alerts"][1:]:
                    count[a["reason"]] += 1
                    ok[a["reason"]] += truth.get(a["fingerprint"]) == first
    return {
        "storms": storms,
        "rows": [pool(n, parts) for n, parts in rows.items()],
        "joins": {n: {r: [right[n][r], c] for r, c in sorted(joins[n].items())} for n in joins},
    }


def ablate(data: Path, storms: list[str], graph: dict[str, list[str]]) -> list[dict[str, Any]]:
    """``watchkeeper eval correlation``'s ablation of the default + the true graph (1 hop), pooled."""
    sources = registry(plugins=False)
    rows: dict[str, list[Scores]] = {}
    for storm in storms:
        truth = read_truth((data / f"{storm}.truth.jsonl").read_bytes())
        lines = (data / f"{storm}.jsonl").read_bytes().splitlines()
        for row in ablation(lines, lambda: configs(graph)["default + graph (1 hop)"], truth, sources):
            rows.setdefault(row.name, []).append(row)
    return [pool(name, parts) for name, parts in rows.items()]


def errors(data: Path, storms: list[str], graph: dict[str, list[str]], config: str) -> None:
    """Per-pair error listing: every incident holding alerts of two or more ground-truth groups, each
    alert with its onset (seconds from the storm's first), service, name, named dependency, true group,
    and the reason and evidence it joined by. For diagnosis on tuning storms only."""
    sources = registry(plugins=False)
    for storm in storms:
        truth = read_truth((data / f"{storm}.truth.jsonl").read_bytes())
        with (data / f"{storm}.jsonl").open("rb") as fh:
            result = replay(fh, sources, configs(graph)[config])
        records = list(incident_records(result))
        s = score(config, [[a["fingerprint"] for a in r["alerts"]] for r in records], truth)
        print(
            f"\n### {storm}: {s.incidents} incidents of {s.alerts} alerts, precision {_fmt(s.precision)}, "
            f"recall {_fmt(s.recall)}"
        )
        t0 = min((a.first_seen for a in result.state.alerts.values()), default=None)
        for r in records:
            if len({truth.get(a["fingerprint"]) for a in r["alerts"]}) < 2 or t0 is None:
                continue
            print(f"- incident {r['id']} merges {len({truth.get(a['fingerprint']) for a in r['alerts']})} groups:")
            for a in r["alerts"]:
                alert = result.state.alerts[a["fingerprint"]]
                named = next((alert.labels[k] for k in Mentions.LABELS if k in alert.labels), "")
                print(
                    f"  {(alert.first_seen - t0).total_seconds():6.1f}s {alert.service:<12} {alert.name:<18} "
                    f"{named:<12} [{truth.get(a['fingerprint'], '?')}] {a['reason']}: {a['detail'][:140]}"
                )


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def show(title: str, report: dict[str, Any]) -> None:
    print(f"\n## {title}: {', '.join(report['storms'])}\n")
    print("| configuration | alerts | incidents | compression | precision | recall | storms with P ≥ 0.95 |")
    print("|---|---|---|---|---|---|---|")
    for r in report["rows"]:
        print(
            f"| {r['name']} | {r['alerts']} | {r['incidents']} | {_fmt(r['compression'])} | "
            f"{_fmt(r['precision'])} | {_fmt(r['recall'])} | "
            f"{r['storms_precision_ge_095']}/{len(report['storms'])} |"
        )
    print("\njoins per reason (right / all; right = same ground-truth group as the incident's first alert):\n")
    for name, reasons in report["joins"].items():
        print(f"- {name}: " + ", ".join(f"{r} {ok}/{n}" for r, (ok, n) in reasons.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=HERE / "data" / "storms")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--split",
        choices=list(SPLITS),
        action="append",
        help="only this split (default: every split, held-out ones first); while tuning: "
        "--split rich-tuning --split tuning",
    )
    parser.add_argument(
        "--ablation",
        action="store_true",
        help="also the ablation of default + graph (1 hop): without each strategy, onset times, ...",
    )
    parser.add_argument(
        "--errors",
        metavar="CONFIG",
        choices=["default", "default + graph (1 hop)", "default + graph (2 hops)"],
        help="list the incidents that merge ground-truth groups, alert by alert, with the "
        "evidence, for this configuration (tuning splits only unless --split says)",
    )
    args = parser.parse_args()
    manifest = json.loads((args.data / "manifest.json").read_text())
    graph = yaml.safe_load((args.data / "graph.yaml").read_text())
    if args.errors:
        for split in args.split or [s for s in SPLITS if "tuning" in s]:
            if split in manifest["split"]:
                errors(args.data, [f"storm-{s:02d}" for s in manifest["split"][split]], graph, args.errors)
        return
    out = {
        split: evaluate(args.data, [f"storm-{s:02d}" for s in manifest["split"][split]], graph)
        for split in args.split or SPLITS
        if split in manifest["split"]
    }
    if args.json:
        print(json.dumps(out))
        return
    for split, report in out.items():
        show(SPLITS[split], report)
        if args.ablation:
            print("\nablation of default + graph (1 hop), pooled:\n")
            print("| replayed | incidents | compression | precision | recall |\n|---|---|---|---|---|")
            for r in ablate(args.data, report["storms"], graph):
                print(
                    f"| {r['name']} | {r['incidents']} | {_fmt(r['compression'])} | {_fmt(r['precision'])} | "
                    f"{_fmt(r['recall'])} |"
                )
    print(
        f"\ntarget on held-out storms, default + true service graph: compression ≥ {TARGET_COMPRESSION} "
        f"at pairwise precision ≥ {TARGET_PRECISION}"
    )


if __name__ == "__main__":
    main()
