"""``watchkeeper db``: migrations and retention."""

from __future__ import annotations

from typing import Annotated

import typer

from watchkeeper.cli.common import (
    out,
    service,
)

app = typer.Typer(no_args_is_help=True, help="Database migrations.")


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    with service() as wk:
        out.print(f"database at revision {wk.db.current_revision()}")


@app.command("prune")
def db_prune(
    days: Annotated[float | None, typer.Option(min=0, help="Keep this many days (default: retention_days, 90)")] = None,
) -> None:
    """Delete events and dead letters older than the retention (serve does it hourly)."""
    with service() as wk:
        keep = wk.settings.retention_days if days is None else days
        if keep == 0:
            out.print("retention is off (retention_days: 0): nothing deleted; pass --days N to prune anyway")
            return
        out.print(str(wk.prune(keep)))
