"""``watchkeeper eval correlation INCIDENTS GROUND_TRUTH`` and ``watchkeeper eval telecom DIR``.

Mounted by the main CLI (``app`` has the two commands ``correlation`` and ``telecom``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from watchkeeper.correlate.cooccurrence import CoOccurrence
from watchkeeper.eval import telecom as tele
from watchkeeper.eval.correlation import (
    Contribution,
    Scores,
    ablation,
    contributions,
    groupkey_clusters,
    incident_clusters,
    one_per_alert,
    read_truth,
    score,
)
from watchkeeper.sources import registry

app = typer.Typer(add_completion=False)
_out = Console(highlight=False)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@app.command("correlation")
def correlation(
    incidents: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                              help="Webhook payloads JSONL (replayed here, with --correlation), "
                                                   "or incidents from `watchkeeper replay --out`")],
    ground_truth: Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                                 help="JSONL of {fingerprint, group}, or one JSON object "
                                                      "{fingerprint: group}")],
    payloads: Annotated[Path | None, typer.Option(exists=True, dir_okay=False,
                                                  help="The replay input JSONL: adds the one-incident-per-"
                                                       "Alertmanager-groupKey baseline")] = None,
    unlabelled: Annotated[str, typer.Option(help="Fingerprints missing from the ground truth: "
                                                 "'singleton' (each its own group) or 'drop'")] = "singleton",
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
    correlation_config: Annotated[Path | None, typer.Option(
        "--correlation", exists=True, dir_okay=False,
        help="Correlation config for replaying payloads (default: service grouping, 5 min window)")] = None,
    with_ablation: Annotated[bool, typer.Option(
        "--ablation/--no-ablation",
        help="Replaying payloads: also replay without each strategy, onset times, onset order, learned lags "
             "and splits (each one's contribution)")] = True,
) -> None:
    """Pairwise precision/recall/F1, purity and compression of replayed incidents, with baselines and
    (replaying payloads) an ablation: each strategy's contribution."""
    if unlabelled not in ("singleton", "drop"):
        raise typer.BadParameter("--unlabelled must be 'singleton' or 'drop'")
    with incidents.open("rb") as fh:
        first = next((line for line in fh if line.strip()), b"{}")
    records: list[dict[str, Any]] = []
    ablated: list[Scores] = []
    truth = read_truth(ground_truth.read_bytes())
    if not _is_payload(first):  # replay output: incident records
        with incidents.open("rb") as fh:
            clusters = incident_clusters(fh)
        with incidents.open("rb") as fh:
            records = [orjson.loads(line) for line in fh if line.strip()]
    else:  # webhook payloads: replay them here, with the same pipeline as the server
        from watchkeeper.correlate.config import load_config
        from watchkeeper.correlate.pipeline_config import PipelineConfig
        from watchkeeper.replay import incident_records, replay

        def make() -> PipelineConfig:  # a fresh one per run: strategies learn as they go
            if correlation_config is None:
                return PipelineConfig()
            return load_config(correlation_config).pipeline(correlation_config.parent)

        with incidents.open("rb") as fh:
            result = replay(fh, registry(plugins=False), make())
        records = list(incident_records(result))
        clusters = [[a["fingerprint"] for a in record["alerts"]] for record in records]
        payloads = payloads or incidents
        if with_ablation:
            lines = incidents.read_bytes().splitlines()
            ablated = ablation(lines, make, truth, registry(plugins=False), unlabelled=unlabelled)[1:]
    joins = contributions(records, truth)
    results: list[Scores] = [
        score("watchkeeper", clusters, truth, unlabelled=unlabelled),
        score("one incident per alert", one_per_alert(clusters), truth, unlabelled=unlabelled),
    ]
    if payloads is not None:
        with payloads.open("rb") as fh:
            groups = groupkey_clusters(fh, registry(plugins=False))
        if groups is not None:
            results.append(score("one incident per Alertmanager group", groups, truth, unlabelled=unlabelled))
    if as_json:
        print(orjson.dumps({"groupings": [r.as_dict() for r in results], "ground_truth": len(truth),
                            "unlabelled_policy": unlabelled,
                            "joins": [{"reason": c.reason, "joins": c.joins, "right": c.right, "labelled": c.labelled,
                                       "precision": c.precision} for c in joins],
                            "ablation": [r.as_dict() for r in ablated]}).decode())
        return
    table = Table(title=f"Correlation vs ground truth ({len(truth)} labelled fingerprints)")
    for column in ("grouping", "alerts", "incidents", "compression", "precision", "recall", "F1",
                   "purity", "inv. purity", "unlabelled"):
        table.add_column(column, justify="left" if column == "grouping" else "right")
    for r in results:
        table.add_row(r.name, str(r.alerts), str(r.incidents), _fmt(r.compression), _fmt(r.precision),
                      _fmt(r.recall), _fmt(r.f1), _fmt(r.purity), _fmt(r.inverse_purity), str(r.unlabelled))
    _out.print(table)
    _contributions(joins)
    _ablation(results[0], ablated)
    if payloads is not None and len(results) == 2:
        _out.print("no Alertmanager webhook (groupKey) in the payloads: no groupKey baseline")


@app.command("telecom")
def telecom(
    root: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                         help="PCIC 2021 set: Alarm.csv, DAG.csv[, Topology.csv]")],
    window: Annotated[float, typer.Option(help="Co-occurrence window, seconds")] = tele.TUNED["window_s"],
    hops: Annotated[int, typer.Option(help="Topology hops counted as adjacent (0: same device)")] = int(
        tele.TUNED["hops"]),
    min_lift: Annotated[float, typer.Option(help="Minimum lift of an edge")] = tele.TUNED["min_lift"],
    alpha: Annotated[float, typer.Option(help="FDR level (Benjamini–Hochberg)")] = tele.TUNED["alpha"],
    min_support: Annotated[int, typer.Option(help="Minimum co-occurrences")] = int(tele.TUNED["min_support"]),
    no_topology: Annotated[bool, typer.Option("--no-topology", help="Ignore Topology.csv")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object")] = False,
) -> None:
    """Learned alarm-type co-occurrence graph vs the expert causal DAG (precision, recall, F1)."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=_out, transient=True) as bar:
        task = bar.add_task(f"reading {root.name}", total=None)
        data = tele.load(root)
        bar.update(task, description=f"learning from {len(data.kinds):,} alarms")
        started = time.perf_counter()
        model = CoOccurrence(window_s=window, alpha=alpha, min_support=min_support, min_lift=min_lift, hops=hops)
        graph = tele.learn_graph(data, model, use_topology=not no_topology)
        seconds = time.perf_counter() - started
    directed = tele.graph_scores(graph, data.dag)
    undirected = tele.graph_scores(graph, data.dag, directed=False)
    published = tele.PUBLISHED.get(data.name, {})
    if as_json:
        print(orjson.dumps({"set": data.name, "alarms": len(data.kinds), "model": repr(model),
                            "learn_seconds": seconds, "directed": directed, "undirected": undirected,
                            "published_f1": published}).decode())
        return
    table = Table(title=f"{data.name}: {len(data.kinds):,} alarms, {data.n_types} types, learned in {seconds:.2f} s")
    for column in ("edges", "learned", "expert", "correct", "precision", "recall", "F1"):
        table.add_column(column, justify="right")
    for name, s in (("directed", directed), ("undirected", undirected)):
        table.add_row(name, str(s.learned), str(s.truth), str(s.correct), f"{s.precision:.3f}", f"{s.recall:.3f}",
                      f"{s.f1:.3f}")
    _out.print(table)
    _out.print(f"{model!r}")
    if published:
        _out.print("published directed F1: " + ", ".join(f"{k} {v:.3f}" for k, v in published.items()))
    _out.print("parameters tuned on this very set (the only one at hand): the F1 is optimistic", style="yellow")


def _contributions(joins: list[Contribution]) -> None:
    """Each strategy's contribution: the joins it made and how many were right."""
    if not joins:
        return
    table = Table(title="Joins per reason (right: same ground-truth group as the incident's first alert)")
    for column in ("reason", "joins", "right", "precision"):
        table.add_column(column, justify="left" if column == "reason" else "right")
    for c in joins:
        table.add_row(c.reason, str(c.joins), f"{c.right}/{c.labelled}", _fmt(c.precision))
    _out.print(table)


def _ablation(full: Scores, rows: list[Scores]) -> None:
    """Each part's contribution: the scores without it, and the change from the full configuration."""
    if not rows:
        return
    table = Table(title="Ablation: the same replay without one part (Δ: change from the full configuration)")
    for column in ("replayed", "incidents", "compression", "Δ", "precision", "Δ", "recall", "Δ"):
        table.add_column(column, justify="left" if column == "replayed" else "right")

    def delta(a: float | None, b: float | None) -> str:
        return "n/a" if a is None or b is None else f"{a - b:+.3f}"

    table.add_row("this configuration", str(full.incidents), _fmt(full.compression), "", _fmt(full.precision), "",
                  _fmt(full.recall), "")
    for r in rows:
        table.add_row(r.name, str(r.incidents), _fmt(r.compression), delta(r.compression, full.compression),
                      _fmt(r.precision), delta(r.precision, full.precision), _fmt(r.recall),
                      delta(r.recall, full.recall))
    _out.print(table)


def _is_payload(line: bytes) -> bool:
    """Whether a JSONL line is a webhook body of a known format (else: a replay incident record)."""
    from watchkeeper.errors import InputError
    from watchkeeper.sources import detect

    try:
        payload = orjson.loads(line)
        if isinstance(payload, dict):
            payload.pop("received_at", None)
        detect(payload, registry(plugins=False))
    except (orjson.JSONDecodeError, InputError):
        return False
    return True
