"""``watchkeeper eval nab DIR`` and ``watchkeeper eval smd DIR``: our detectors on public benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from watchkeeper.detect.filter import onsets, run
from watchkeeper.detect.multivariate import MaxZ
from watchkeeper.detect.robust import RobustSeasonal
from watchkeeper.eval import nab as nab_scoring
from watchkeeper.eval import smd as smd_scoring

app = typer.Typer(help="Evaluate the detectors on public benchmarks.", no_args_is_help=True)

#: Score the start of an anomaly, not each of its points, for this many points (see ``onsets``).
NAB_ONSET_HORIZON = 100
#: The filter's threshold while scoring NAB: anomalous points are not learned.
NAB_LEARN_THRESHOLD = 0.8


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True)


def nab_detect(data: nab_scoring.DataFile) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Our NAB entry: the robust seasonal baseline behind the anomaly filter, scored at onsets."""
    scores = run(RobustSeasonal(), data.times, data.values, threshold=NAB_LEARN_THRESHOLD)
    return onsets(scores, NAB_ONSET_HORIZON)


@app.command()
def nab(
    root: Annotated[Path, typer.Argument(help="NAB checkout: data/, labels/, config/")],
    category: Annotated[list[str] | None, typer.Option(help="only these categories")] = None,
) -> None:
    """NAB scores (standard, reward_low_FP_rate, reward_low_FN_rate) per category and overall."""
    console = Console()
    files = nab_scoring.load_corpus(root, category)
    if not files:
        raise typer.BadParameter(f"no labelled NAB files under {root}")
    profiles = nab_scoring.Profile.load(root / "config" / "profiles.json")
    with _progress(console) as progress:
        task = progress.add_task("NAB", total=len(files))
        results = nab_scoring.evaluate(files, nab_detect, profiles, lambda _d: progress.advance(task))
    table = Table(title=f"NAB scores of RobustSeasonal ({len(files)} files)")
    table.add_column("category")
    for r in results:
        table.add_column(r.profile, justify="right")
    categories = sorted({d.category for d in files})
    for c in categories:
        cells = [r.categories[c] for r in results]
        table.add_row(c, *[f"{v:.1f}" if v is not None else f"n/a (raw {r.raw[c]:.2f})"
                           for v, r in zip(cells, results, strict=True)])
    table.add_row("overall", *[f"{r.overall:.1f}" for r in results], style="bold")
    table.add_row("threshold", *[f"{r.threshold:.4f}" for r in results], style="dim")
    console.print(table)


@app.command()
def smd(
    root: Annotated[Path, typer.Argument(help="smd_asd/ (or one of its sets): *_train/_test/_test_label.npy")],
    threshold: Annotated[float, typer.Option(min=0.0, max=1.0)] = 0.7,
) -> None:
    """Plain and point-adjusted F1 of the multivariate detector on SMD/ASD."""
    console = Console()
    entities = smd_scoring.load(root)
    if not entities:
        raise typer.BadParameter(f"no *_train.npy/_test.npy/_test_label.npy under {root}")
    with _progress(console) as progress:
        task = progress.add_task("SMD/ASD", total=len(entities))
        reports = smd_scoring.evaluate(entities, MaxZ, threshold, lambda _e: progress.advance(task))
    table = Table(title="MaxZ on SMD/ASD (F1 pooled over entities)")
    for column in ("set", "entities", f"F1 @ {threshold}", f"PA-F1 @ {threshold}",
                   "best F1 (thr)", "best PA-F1 (thr)"):
        table.add_column(column, justify="right")
    for r in reports:
        _, plain, adjusted = r.fixed
        table.add_row(r.group, str(r.entities), f"{plain.f1:.3f}", f"{adjusted.f1:.3f}",
                      f"{r.best_plain[1].f1:.3f} ({r.best_plain[0]:.3f})",
                      f"{r.best_adjusted[1].f1:.3f} ({r.best_adjusted[0]:.3f})")
    console.print(table)
    console.print("best-threshold columns choose the threshold in hindsight (as published results do)")
