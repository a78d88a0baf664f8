"""``watchkeeper metrics detect``: score a metric file (or a Prometheus query) for anomalies.

Writes ``timestamp,anomaly_score`` for every input point (``series,timestamp,anomaly_score``
when there are several series), prints the anomaly windows, and optionally plots them. With
``--state-dir`` the detector of each series resumes from, and is saved back to, a JSON state file.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Annotated, Any, TextIO

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from watchkeeper.detect.base import Detector
from watchkeeper.detect.default import DEFAULT, max_skip_of
from watchkeeper.detect.filter import AnomalyFilter, windows_of
from watchkeeper.detect.store import FileStore
from watchkeeper.errors import WatchkeeperError
from watchkeeper.metrics.series import Series, format_time, read_csv, read_prometheus, read_wide_series

app = typer.Typer(add_completion=False, help="Metric anomaly detection.", no_args_is_help=True)


@app.callback()
def metrics() -> None:
    """Metric anomaly detection."""


def _load(file: Path | None, prometheus: str | None, query: str | None, start: str | None,
          end: str | None, step: str) -> list[Series]:
    if prometheus is not None:
        if file is not None or not (query and start and end):
            raise typer.BadParameter("--prometheus needs --query, --start and --end, and no FILE")
        return read_prometheus(prometheus, query, start, end, step)
    if file is None:
        raise typer.BadParameter("give a FILE or --prometheus URL")
    if file.suffix.lower() in (".parquet", ".pq"):
        return read_wide_series(file)
    with file.open() as fh:
        header = fh.readline().strip().split(",")
    return read_wide_series(file) if len(header) > 2 else [read_csv(file)]


def score_series(series: Series, threshold: float, store: FileStore | None) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Score with the series' saved detector, or a new one of the shipped default configuration
    (:data:`~watchkeeper.detect.default.DEFAULT`); state saved by earlier versions still resumes."""
    detector = store.load(series.name) if store is not None else None
    if detector is None:
        detector = DEFAULT.build()
    if not isinstance(detector, Detector):
        raise WatchkeeperError(f"state of {series.name} holds a {type(detector).__name__}")
    # The default learns every point (max_skip=0): its tails must see the anomalies too. Matched by
    # the saved detector's own class, without building a default to compare with.
    max_skip = max_skip_of(detector)
    if max_skip is None:
        max_skip = AnomalyFilter.max_skip
    f = AnomalyFilter(detector, series=series.name, threshold=threshold, max_skip=max_skip,
                      version=DEFAULT.version)
    scores = np.array([
        0.0 if np.isnan(x) else f.step(float(x), float(t))
        for t, x in zip(series.times, series.values, strict=True)
    ])
    if store is not None:
        store.save(series.name, detector)
    return scores


@app.command()
def detect(
    file: Annotated[Path | None, typer.Argument(help="CSV `timestamp,value`, or a wide CSV/Parquet")] = None,
    out: Annotated[Path | None, typer.Option(help="write timestamp,anomaly_score here")] = None,
    plot: Annotated[Path | None, typer.Option(help="write a PNG of series and anomalies here")] = None,
    threshold: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="score that makes a point anomalous (default: the shipped one)")] = None,
    state_dir: Annotated[Path | None, typer.Option(help="resume/save detector state per series")] = None,
    prometheus: Annotated[str | None, typer.Option(help="Prometheus base URL (instead of FILE)")] = None,
    query: Annotated[str | None, typer.Option(help="PromQL for --prometheus")] = None,
    start: Annotated[str | None, typer.Option(help="RFC 3339 or epoch seconds")] = None,
    end: Annotated[str | None, typer.Option(help="RFC 3339 or epoch seconds")] = None,
    step: Annotated[str, typer.Option(help="query resolution, e.g. 15s")] = "60s",
) -> None:
    """Score every point of a metric for anomalies and list the anomaly windows."""
    console = Console()
    if threshold is None:
        threshold = DEFAULT.threshold
    try:
        all_series = _load(file, prometheus, query, start, end, step)
        store = FileStore(state_dir) if state_dir is not None else None
        results = [(s, score_series(s, threshold, store)) for s in all_series]
    except WatchkeeperError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    several = len(results) > 1
    if out is not None:
        with out.open("w", newline="") as fh:
            _write(fh, results, several)
    table = Table(title=f"anomaly windows ({DEFAULT.version}, score >= {threshold:g})")
    for column in ("series", "start", "end", "points", "peak score", "peak value"):
        table.add_column(column)
    n_windows = 0
    for series, scores in results:
        for a, b in windows_of(scores, threshold):
            peak = a + int(np.argmax(scores[a: b + 1]))
            table.add_row(series.name, format_time(series.times[a]), format_time(series.times[b]),
                          str(b - a + 1), f"{scores[peak]:.3f}", f"{series.values[peak]:g}")
            n_windows += 1
    console.print(table)
    console.print(f"{sum(len(s) for s, _ in results)} points in {len(results)} series, {n_windows} windows")
    if plot is not None:
        from watchkeeper.metrics.plot import plot as draw

        series, scores = results[0]
        draw(plot, series.times, series.values, scores, windows_of(scores, threshold),
             title=series.name, threshold=threshold)


def _write(fh: TextIO, results: list[tuple[Series, np.ndarray[Any, np.dtype[np.float64]]]], several: bool) -> None:
    writer = csv.writer(fh)
    writer.writerow((["series"] if several else []) + ["timestamp", "anomaly_score"])
    for series, scores in results:
        for t, s in zip(series.times, scores, strict=True):
            writer.writerow(([series.name] if several else []) + [format_time(float(t)), f"{s:.6f}"])
