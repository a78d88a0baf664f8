"""``watchkeeper eval forecast DIR_OR_FILES...``: forecast accuracy and warning lead times.

Mounted by the main CLI (``app`` has the one command ``forecast``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.progress import Progress, TaskID
from rich.table import Table

from watchkeeper.detect.forecast import Direction, Series, format_duration, season_length_for
from watchkeeper.detect.forecast_io import parse_duration, read_series
from watchkeeper.errors import InputError
from watchkeeper.eval.forecast import accuracy, lead_times, summary
from watchkeeper.eval.forecast_heldout import LEVEL, TRENDS, FamilyFit, fit_family, leave_one_family_out

app = typer.Typer(add_completion=False)
_out = Console(highlight=False)


@app.command("forecast")
def forecast(
    paths: Annotated[list[Path], typer.Argument(exists=True, help="CSV files or directories of CSVs")],
    horizon: Annotated[str, typer.Option(help="Forecast horizon, e.g. 6h")] = "6h",
    threshold: Annotated[float | None, typer.Option(help="Threshold for lead times")] = None,
    column: Annotated[str | None, typer.Option(help="Series column of wide CSVs")] = None,
    id_column: Annotated[str | None, typer.Option(help="Series-id column of long CSVs")] = None,
    step: Annotated[str | None, typer.Option(help="Resample to this step, e.g. 5m")] = None,
    season: Annotated[int | None, typer.Option(help="Season length in steps (default: detected)")] = None,
    autoets: Annotated[int, typer.Option(help="How many series also get the AutoETS reference")] = 20,
    every: Annotated[int, typer.Option(help="Forecast at every n-th point of the replay")] = 1,
    refit: Annotated[str, typer.Option(help="Refit the parameters this often during the replay")] = "1d",
    below: Annotated[bool, typer.Option("--below", help="The threshold is a floor")] = False,
    by_family: Annotated[bool, typer.Option(
        "--by-family", help="Held out by family (a file's folder): trend and interval width chosen on the "
                            "other families; MASE and 80 % interval coverage")] = False,
) -> None:
    """MASE and sMAPE against seasonal-naive (and AutoETS), and lead times of threshold warnings."""
    files = [f for p in paths for f in (sorted(p.glob("*.csv")) if p.is_dir() else [p])]
    if not files:
        raise InputError("no CSV files found")
    res = parse_duration(step) if step else None
    h_span = parse_duration(horizon)
    if by_family:
        _by_family(files, h_span, column, id_column, res)
        return
    series = [s for f in files for s in read_series(f, column=column, id_column=id_column, step=res)]
    groups: dict[tuple[int, timedelta, int], list[Series]] = defaultdict(list)
    for s in series:
        h = max(1, math.ceil(h_span / s.step))
        if len(s.values) < 3 * h + 10:
            continue
        m = season or season_length_for(s.values[:-h], s.step)
        groups[(len(s.values), s.step, m)].append(s)
    kept = sum(len(g) for g in groups.values())
    _out.print(f"{len(series)} series read from {len(files)} file(s); "
               f"{kept} long enough for a {horizon} horizon", markup=False)
    scores: dict[str, list[float]] = defaultdict(list)
    leads: list[float] = []
    crossings = missed = false_alarms = replayed = 0
    fit_seconds = autoets_seconds = 0.0
    autoets_left = autoets
    direction = Direction.BELOW if below else Direction.ABOVE
    with Progress(console=_out, transient=True) as bar:
        for (n, step_td, m), members in groups.items():
            h = max(1, math.ceil(h_span / step_td))
            values = np.vstack([s.values for s in members])
            task = bar.add_task(f"accuracy ({len(members)} × {n}, season {m})",
                                total=min(autoets_left, len(members)))
            acc = accuracy(values, h, m, autoets=autoets_left, progress=_advance(bar, task))
            autoets_left -= acc.autoets_series
            fit_seconds += acc.fit_seconds
            autoets_seconds += acc.autoets_seconds
            for key, arr in (("mase_fast", acc.mase_fast), ("mase_naive", acc.mase_naive),
                             ("mase_autoets", acc.mase_autoets), ("smape_fast", acc.smape_fast),
                             ("smape_naive", acc.smape_naive), ("smape_autoets", acc.smape_autoets)):
                scores[key].extend(arr.tolist())
            # Same series, AIC-chosen fast model vs AutoETS only where AutoETS ran:
            ran = np.isfinite(acc.mase_autoets)
            scores["mase_fast_on_autoets"].extend(acc.mase_fast[ran].tolist())
            if threshold is None:
                continue
            warmup = max(n // 2, 2 * m + 2, 3 * h)
            task = bar.add_task(f"lead times ({len(members)} series)", total=n - warmup)
            lt = lead_times(values, threshold, h, m, warmup=warmup, every=every,
                            refit_every=max(1, round(parse_duration(refit) / step_td)), trend=True,
                            direction=direction, progress=_advance(bar, task))
            leads.extend(s * step_td.total_seconds() for s in lt.lead_steps)
            crossings += lt.crossings
            missed += lt.missed
            false_alarms += lt.false_alarms
            replayed += lt.series * lt.steps_replayed * int(step_td.total_seconds())
    table = Table(title=f"forecast accuracy, horizon {horizon} (lower is better)")
    for name in ("model", "series", "MASE mean", "MASE median", "sMAPE mean %"):
        table.add_column(name)
    models = (("fast ETS (vectorised)", "fast"), ("seasonal naive", "naive"), ("AutoETS", "autoets"))
    for label, key in models:
        mm = summary(scores[f"mase_{key}"])
        sm = summary(scores[f"smape_{key}"])
        count = int(np.isfinite(np.asarray(scores[f"mase_{key}"], dtype=float)).sum())
        table.add_row(label, str(count), f"{mm[0]:.3f}", f"{mm[1]:.3f}", f"{sm[0]:.2f}")
    fa = summary(scores["mase_fast_on_autoets"])
    table.add_row("fast ETS on the AutoETS subset", str(len(scores["mase_fast_on_autoets"])),
                  f"{fa[0]:.3f}", f"{fa[1]:.3f}", "")
    _out.print(table)
    _out.print(f"fast fit: {fit_seconds:.2f} s in total; AutoETS: {autoets_seconds:.2f} s for "
               f"{autoets - autoets_left} series", markup=False)
    if threshold is not None:
        mean, median = summary(leads)
        days = replayed / 86400.0
        _out.print(
            f"threshold {threshold:g} ({direction.value}): {crossings} real crossing(s), {missed} missed; "
            f"lead time mean {_fmt(mean)}, median {_fmt(median)}; "
            f"{false_alarms} false alarm(s) over {days:.1f} series-days replayed", markup=False)


def _advance(bar: Progress, task: TaskID) -> Callable[[int], None]:
    def advance(k: int) -> None:
        bar.advance(task, k)

    return advance


def _fmt(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else format_duration(timedelta(seconds=seconds))


def _by_family(files: list[Path], h_span: timedelta, column: str | None, id_column: str | None,
               res: timedelta | None) -> None:
    families: dict[str, list[Series]] = defaultdict(list)
    for f in files:
        for s in read_series(f, column=column, id_column=id_column, step=res):
            if len(s.values) >= 3 * max(1, math.ceil(h_span / s.step)) + 10:
                families[f.parent.name].append(s)
    if len(families) < 2:
        raise InputError("--by-family needs series from at least two folders (one family per folder)")

    def steps(s: Series) -> int:
        return max(1, math.ceil(h_span / s.step))

    fits: dict[str, dict[str, FamilyFit]] = {}
    with Progress(console=_out, transient=True) as bar:
        task = bar.add_task("fitting", total=len(families) * len(TRENDS))
        for name, members in sorted(families.items()):
            fits[name] = {}
            for label, trend in TRENDS.items():
                fits[name][label] = fit_family(members, steps, trend)
                bar.advance(task)
    rows = leave_one_family_out(fits)
    table = Table(title=f"forecasts held out by family ({len(families)} families, horizon "
                        f"{format_duration(h_span)}): chosen on the other families")
    for name in ("family", "series", "trend, width", "MASE held-out", "MASE in-sample",
                 f"coverage held-out (of {LEVEL:g} %)", "coverage in-sample"):
        table.add_column(name)
    for r in rows:
        table.add_row(r.family, str(len(families[r.family])), f"{r.trend}, ×{r.width:g}", f"{r.mase:.3f}",
                      f"{r.in_sample_mase:.3f}", f"{100 * r.coverage:.1f} %", f"{100 * r.in_sample_coverage:.1f} %")
    _out.print(table)
    worst = max(rows, key=lambda r: r.mase)
    _out.print(f"worst held-out MASE: {worst.family} {worst.mase:.3f}; coverage furthest from {LEVEL:g} %: "
               + min(rows, key=lambda r: -abs(r.coverage - LEVEL / 100)).family, markup=False)
