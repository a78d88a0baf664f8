"""``watchkeeper metrics forecast FILE``: when will this series cross the threshold?

Mounted by the main CLI (``app`` has the one command ``forecast``).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from watchkeeper.detect.forecast import Direction, Forecaster, SeriesForecast, format_duration
from watchkeeper.detect.forecast_io import parse_duration, read_series
from watchkeeper.errors import InputError

app = typer.Typer(add_completion=False)
_out = Console(highlight=False)


@app.command("forecast")
def forecast(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV: timestamp,value (or wide)")],
    horizon: Annotated[str, typer.Option(help="How far ahead to look, e.g. 6h, 2d")] = "6h",
    threshold: Annotated[float, typer.Option(help="The level that must not be crossed")] = 90.0,
    column: Annotated[str | None, typer.Option(help="Series column of a wide CSV")] = None,
    id_column: Annotated[str | None, typer.Option(help="Series-id column of a long CSV")] = None,
    below: Annotated[bool, typer.Option("--below", help="Warn when the series falls below")] = False,
    level: Annotated[float, typer.Option(help="Prediction interval, percent")] = 80.0,
    step: Annotated[str | None, typer.Option(help="Resample to this step (default: median spacing)")] = None,
    season: Annotated[int | None, typer.Option(help="Season length in steps (default: detected)")] = None,
    trend: Annotated[bool, typer.Option("--trend/--auto-trend",
                                        help="Always model a trend (default) or let the AIC choose")] = True,
    unit: Annotated[str, typer.Option(help="Unit shown after values, e.g. %")] = "",
    plot: Annotated[Path | None, typer.Option(help="Write a PNG of the first series' forecast")] = None,
) -> None:
    """Print the predicted threshold crossing (time and interval) of each series in FILE."""
    series = read_series(file, column=column, id_column=id_column,
                         step=parse_duration(step) if step else None)
    if len(series) > 1 and plot is not None and column is None and id_column is None:
        raise InputError(f"{file} has {len(series)} series: choose one with --column to plot")
    fc = Forecaster(threshold, parse_duration(horizon), level=level,
                    direction=Direction.BELOW if below else Direction.ABOVE, unit=unit,
                    season_length=season, trend=True if trend else None)
    fc.fit(series)
    results = fc.forecasts()
    for result in results:
        _out.print(_describe(result, fc), markup=False)
    if plot is not None:
        from watchkeeper.metrics.forecast_plot import plot_forecast  # matplotlib only when asked

        h = max(1, round(fc.horizon / results[0].series.step))
        plot_forecast(results[0], threshold, plot, history=max(4 * h, 200))
        _out.print(f"plot written to {plot}", markup=False)


def _describe(result: SeriesForecast, fc: Forecaster) -> str:
    s, c = result.series, result.crossing
    head = f"{s.name} ({len(s.values)} points every {_span(s.step)}, {result.method}):"
    if c is None:
        return f"{head} no crossing of {fc.threshold:g}{fc.unit} within {_span(fc.horizon)}"
    at = result.crossing_at
    assert at is not None
    if c.steps == 0.0:
        return f"{head} already past {fc.threshold:g}{fc.unit}"
    early = s.end + s.step * c.earliest
    late = "beyond the horizon" if c.latest is None else f"{s.end + s.step * c.latest:%Y-%m-%d %H:%M}"
    return (f"{head} crosses {fc.threshold:g}{fc.unit} at {at:%Y-%m-%d %H:%M} UTC, "
            f"in {_span(s.step * c.steps)} "
            f"({fc.level:g}% interval: {early:%Y-%m-%d %H:%M} – {late})")


def _span(d: timedelta) -> str:
    return format_duration(d)
