"""``watchkeeper correlation``: check a correlation config, learn co-occurrence."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from watchkeeper.cli.common import (
    out,
    service,
)
from watchkeeper.errors import WatchkeeperError

app = typer.Typer(no_args_is_help=True, help="Correlation configuration and learned co-occurrence.")


@app.command("validate")
def correlation_validate(file: Annotated[Path, typer.Argument(help="correlation YAML")]) -> None:
    """Check a correlation config; exit 2 naming file:line of every problem."""
    from watchkeeper.correlate.config import load_config

    config = load_config(file)
    out.print(f"OK: window {config.window:g}s, strategies {', '.join(s.type for s in config.strategies)}, "
              f"{len(config.inhibit_rules)} inhibit rules")


@app.command("learn")
def correlation_learn(
    out_file: Annotated[Path, typer.Option("--out", help="YAML graph for a cooccurrence strategy")],
    start: Annotated[datetime | None, typer.Option("--from", help="history start (ISO 8601)")] = None,
    end: Annotated[datetime | None, typer.Option("--to", help="history end")] = None,
    window: Annotated[float, typer.Option(help="seconds within which a type 'follows' another")] = 120.0,
    by: Annotated[str, typer.Option(help="'name': alert types (cooccurrence graph); 'service': a service graph "
                                         "for the topology strategy")] = "name",
    alpha: float = 0.01,
    min_support: int = 5,
) -> None:
    """Learn which alert types fire together from the stored history (binomial test, BH-corrected)."""
    import yaml

    from watchkeeper.correlate.cooccurrence import CoOccurrence
    from watchkeeper.model import utc
    from watchkeeper.storage import queries

    with service() as wk, wk.db.read() as conn:
        history = queries.activations(conn, utc(start) if start else None, utc(end) if end else None)
    if not history:
        raise WatchkeeperError("no alert history in that window to learn from")
    model = CoOccurrence(window_s=window, alpha=alpha, min_support=min_support)
    if by not in ("name", "service"):
        raise WatchkeeperError("--by is 'name' or 'service'")
    # alert types (or services) that start firing together, wherever they fire
    model.learn(((name if by == "name" else svc), at.timestamp()) for name, at, svc in history)
    graph: dict[str, list[str]] = {}
    for edge in model.edges():
        graph.setdefault(str(edge.source), []).append(str(edge.target))
    out_file.write_text(yaml.safe_dump(graph, sort_keys=True))
    out.print(f"{len(history)} activations of {len({h[0] for h in history})} alert types → "
              f"{sum(len(v) for v in graph.values())} edges written to {out_file}")
