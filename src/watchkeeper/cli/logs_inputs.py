"""``watchkeeper logs sources``: the configured log inputs, their stored offsets and what they kept
(a command added to the ``logs`` group of :mod:`watchkeeper.cli.logs`)."""

from __future__ import annotations

from typing import Annotated

import typer

from watchkeeper.cli.common import dumps, local_only, make_table, out, service, stamp
from watchkeeper.cli.logs import app


@app.command("sources")
def log_sources(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Each configured log input (settings 'logs:'): its service, address or file, the raw lines it
    has kept in the retention window, its dead letters and, for a file, the stored inode and offset
    where serve resumes."""
    local_only("logs sources")
    from watchkeeper.service.logs import LogIngest

    with service() as wk:
        rows = LogIngest(wk).sources()
    if as_json:
        for row in rows:
            print(dumps({"input": row.name, "kind": row.kind, "service": row.service, "address": row.address,
                         "lines_kept": row.lines, "dead_letters": row.bad,
                         "inode": row.offset.inode if row.offset else None,
                         "offset": row.offset.offset if row.offset else None,
                         "updated_at": row.updated_at.isoformat() if row.updated_at else None}))
        return
    table = make_table("input", "service", "address", "lines kept", "dead letters", "inode:offset", "updated")
    for row in rows:
        table.add_row(row.name, row.service, row.address, str(row.lines), str(row.bad),
                      f"{row.offset.inode}:{row.offset.offset}" if row.offset else "-",
                      stamp(row.updated_at) if row.updated_at else "-")
    out.print(table)
