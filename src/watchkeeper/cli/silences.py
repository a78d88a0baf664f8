"""``watchkeeper silences``: mute alerts by matchers for a while."""

from __future__ import annotations

from typing import Annotated

import typer

from watchkeeper.cli.common import (
    actor,
    make_table,
    out,
    service,
    stamp,
)
from watchkeeper.errors import WatchkeeperError

app = typer.Typer(no_args_is_help=True, help="Mute alerts by matchers for a while (maintenance).")


@app.command("add")
def silences_add(
    matcher: Annotated[list[str], typer.Option(help='name="value", name!=…, name=~regex, name!~regex (repeatable)')],
    duration: Annotated[str, typer.Option(help="how long: 30m, 2h …")] = "1h",
    comment: str = "",
) -> None:
    """Mute matching alerts from now for DURATION (they are kept and audited, but open no incident)."""
    from datetime import timedelta

    from watchkeeper.yamlfile import parse_duration

    try:
        seconds = float(parse_duration(duration))
    except ValueError as exc:
        raise WatchkeeperError(str(exc)) from None
    with service() as wk:
        made = wk.add_silence(list(matcher), wk.clock() + timedelta(seconds=seconds), actor(), comment)
    out.print(f"silence {made.id}: {' '.join(made.matchers)} until {stamp(made.ends_at)}Z")


@app.command("list")
def silences_list(expired: Annotated[bool, typer.Option(help="include ended silences")] = False) -> None:
    """Active silences (or all)."""
    with service() as wk:
        rows = wk.silences(active=not expired)
    table = make_table("id", "matchers", "starts", "ends", "by", "comment")
    for r in rows:
        table.add_row(str(r.id), " ".join(r.matchers), stamp(r.starts_at), stamp(r.ends_at), r.created_by, r.comment)
    out.print(table)


@app.command("expire")
def silences_expire(silence_id: int) -> None:
    """End a silence now."""
    with service() as wk:
        wk.expire_silence(silence_id, actor())
    out.print(f"silence {silence_id} ended")
