"""``watchkeeper eval loghub DIR [--corrected]``: the template miner against drain3 on loghub."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from watchkeeper.eval import loghub as scoring


def _table(title: str, results: list[scoring.SystemResult]) -> Table:
    table = Table(title=title)
    for column in ("system", "lines", "GA", "PA", "FGA", "templates (truth)", "lines/s",
                   "drain3 GA", "drain3 PA", "drain3 FGA", "drain3 lines/s", "speed ×"):
        table.add_column(column, justify="left" if column == "system" else "right")
    for r in results:
        m, d = r.miner, r.drain3
        table.add_row(r.system, str(r.lines), f"{m.ga:.3f}", f"{m.pa:.3f}", f"{m.fga:.3f}",
                      f"{m.groups} ({m.truth_groups})", f"{m.lines_per_s:,.0f}",
                      f"{d.ga:.3f}", f"{d.pa:.3f}", f"{d.fga:.3f}", f"{d.lines_per_s:,.0f}",
                      f"{m.lines_per_s / d.lines_per_s:.1f}")
    if len(results) > 1:
        avg = scoring.mean
        table.add_row("average", "", f"{avg(r.miner.ga for r in results):.3f}",
                      f"{avg(r.miner.pa for r in results):.3f}", f"{avg(r.miner.fga for r in results):.3f}", "", "",
                      f"{avg(r.drain3.ga for r in results):.3f}", f"{avg(r.drain3.pa for r in results):.3f}",
                      f"{avg(r.drain3.fga for r in results):.3f}", "", "", style="bold")
    return table


def loghub(
    root: Annotated[Path, typer.Argument(help="loghub directory: <System>/<System>_2k.log and its ground truth")],
    corrected: Annotated[bool, typer.Option(
        help="Score against the corrected ground truth (corrected_2k/<System>/…_structured_corrected.csv)")] = False,
    system: Annotated[list[str] | None, typer.Option(help="Only these systems")] = None,
    loso: Annotated[bool, typer.Option(
        help="Also leave one system out: choose the miner's similarity on the other systems, score the held-out one")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (per system: split, miner, drain3)")]
    = False,
) -> None:
    """Grouping accuracy (GA), parsing accuracy (PA), F1-GA and lines/s of our template miner and of drain3
    (similarity 0.4, depth 4, its example masking), in the same process; held-out systems first."""
    console = Console()
    if not root.is_dir():
        raise typer.BadParameter(f"{root} is not a directory")
    available = scoring.systems_in(root, corrected)
    systems = [s for s in available if not system or s in system]
    missing = sorted(set(system or ()) - set(available))
    if missing:
        raise typer.BadParameter(f"no log with ground truth for {', '.join(missing)} under {root}")
    if not systems:
        raise typer.BadParameter(f"no <System>/<System>_2k.log with its ground truth under {root}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True) if as_json else console, transient=True) as progress:
        task = progress.add_task("loghub", total=len(systems))
        results = scoring.evaluate(root, systems, corrected, progress=lambda _s: progress.advance(task))
    if as_json:
        typer.echo(json.dumps({"corrected": corrected, "tuned_on": list(scoring.TUNED_ON), "systems": [
            {"system": r.system, "lines": r.lines, "split": "held-out" if r.held_out else "tuning",
             "miner": asdict(r.miner), "drain3": asdict(r.drain3)} for r in results]}))
        return
    truth = "corrected ground truth" if corrected else "loghub ground truth"
    held = [r for r in results if r.held_out]
    tuned = [r for r in results if not r.held_out]
    if held:
        console.print(_table(f"Held out (never looked at while tuning) — {truth}", held))
    if tuned:
        console.print(_table(f"Tuned on ({', '.join(scoring.TUNED_ON)}): in-sample — {truth}", tuned))
    if held and tuned:
        console.print(f"average GA over all {len(results)} systems: miner "
                      f"{scoring.mean(r.miner.ga for r in results):.3f}, drain3 "
                      f"{scoring.mean(r.drain3.ga for r in results):.3f}")
    if loso:
        if len(systems) < 2:
            raise typer.BadParameter("--loso needs at least two systems")
        held_out = scoring.leave_one_system_out([scoring.load(root, s, corrected) for s in systems])
        table = Table(title="Leave one system out: similarity chosen on the other systems",
                      caption="grid: " + ", ".join(map(str, scoring.SIMILARITY_GRID)))
        for column in ("held-out system", "similarity chosen", "GA"):
            table.add_column(column, justify="left" if column == "held-out system" else "right")
        for h in held_out:
            table.add_row(h.system, f"{h.similarity:.2f}", f"{h.ga:.3f}")
        table.add_row("average", "", f"{scoring.mean(h.ga for h in held_out):.3f}", style="bold")
        console.print(table)
        console.print("only the similarity is chosen here; the masking and merge rules were designed on "
                      f"{', '.join(scoring.TUNED_ON)}")
    total_lines = sum(r.lines for r in results)
    ours = total_lines / sum(r.lines / r.miner.lines_per_s for r in results)
    theirs = total_lines / sum(r.lines / r.drain3.lines_per_s for r in results)
    console.print(f"throughput over all {total_lines:,} lines: miner {ours:,.0f} lines/s, drain3 {theirs:,.0f} "
                  f"lines/s ({ours / theirs:.1f}×, same process; 2k-line files are mostly first sightings — "
                  "benchmarks/logs_miner.py measures the steady state)")
