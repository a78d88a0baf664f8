"""``watchkeeper watch``: try a settings file's watches against the live Prometheus.

Mounted by the main CLI; the heavy imports (numpy, the detectors) happen only when a command runs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Metric watches: try them before serve runs them.")
out = Console(highlight=False)


@app.command("test")
def watch_test(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="Settings YAML with a watch: section")],
    limit: Annotated[int, typer.Option(help="Series shown per watch")] = 20,
) -> None:
    """Evaluate every watch once against its Prometheus and show what it sees. Exit 2 for an
    invalid file (naming file:line), 1 when a query failed, 0 otherwise."""
    from watchkeeper import logconfig
    from watchkeeper.errors import ConfigError
    from watchkeeper.settings import load_settings
    from watchkeeper.watch.runner import Watcher

    settings = load_settings(os.environ, file)
    logconfig.configure("error")  # the table says what failed; no log lines in between
    config = settings.watch
    if not config.watches and not config.forecasts:
        raise ConfigError(f"{file}: no watches: add a watch: section with watches or forecasts")
    watcher = Watcher(config, ingest=lambda _events: None)
    failed = 0
    try:
        for name, engine in watcher.engines.items():
            result = watcher.evaluate(name)
            status = watcher.watch_status(name)
            kind = "forecast" if status.kind == "forecast" else "anomaly"
            title = f"{name} ({kind}, every {status.interval:g}s) on {status.endpoint}: {engine.watch.query}"
            out.print(title, markup=False, soft_wrap=True, style="bold")
            if result is None:
                failed += 1
                out.print(f"  query failed: {status.last_error}", markup=False, soft_wrap=True)
                continue
            # readable at 80 columns: no vertical rules; only the series (free text) wraps
            table = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 2, 0, 0), collapse_padding=True)
            table.add_column("series", overflow="fold")
            table.add_column("service", no_wrap=True)
            table.add_column("resource", no_wrap=True)
            table.add_column("value", justify="right", no_wrap=True)
            for view in result.seen[:limit]:
                table.add_row(view.key, view.service, view.resource or "-",
                              f"{view.value:.6g}" if math.isfinite(view.value) else str(view.value))
            if result.seen:
                out.print(table)
            notes = [f"{result.series} series"]
            if len(result.seen) > limit:
                notes.append(f"{len(result.seen) - limit} more not shown")
            if result.unlabelled:
                notes.append(f"{result.unlabelled} skipped: no {engine.watch.service_label!r} label")
            if result.short:
                notes.append(f"{result.short} skipped: fewer than 3 values in the lookback")
            if result.series == 0 and not result.unlabelled and not result.short:
                notes.append("the query returned nothing")
            out.print("  " + "; ".join(notes), markup=False)
    finally:
        watcher.stop()
    if failed:
        raise typer.Exit(1)
