"""``watchkeeper deadletter``: the rejected ingest bodies."""

from __future__ import annotations

from typing import Annotated

import typer

from watchkeeper.cli.common import (
    backend,
    cut,
    dumps,
    make_table,
    out,
    stamp,
)
from watchkeeper.views import DeadLetter

app = typer.Typer(no_args_is_help=True, help="Rejected ingest bodies.")


@app.command("list")
def deadletter_list(
    limit: int = 20, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """The newest rejected bodies, with the error each got."""
    with backend() as wk:
        rows: list[DeadLetter] = wk.dead_letters(limit)
    if as_json:
        for row in rows:
            print(dumps(row.as_dict()))
        return
    table = make_table("id", "received", "source", "status", "size", "error")
    for row in rows:
        table.add_row(str(row.id), stamp(row.received_at), row.source, str(row.status),
                      f"{row.size}{'+' if row.truncated else ''}", cut(row.error, 90))
    if rows:
        table.caption = "bodies and whole errors: watchkeeper deadletter list --json"
    out.print(table)
