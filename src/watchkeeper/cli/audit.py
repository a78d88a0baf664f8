"""``watchkeeper audit``: verify the hash-chained audit log."""

from __future__ import annotations

import typer

from watchkeeper.cli.common import (
    backend,
    err,
    out,
)

app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")


@app.command("verify")
def audit_verify() -> None:
    """Recompute the hash chain; exit 1 naming the first broken record."""
    with backend() as wk:
        verdict = wk.verify_audit()
    if isinstance(verdict, dict):  # from a server
        (out if verdict["ok"] else err).print(verdict["message"], markup=False)
        if not verdict["ok"]:
            raise typer.Exit(1)
        return
    if verdict.ok:
        out.print(str(verdict))
        return
    err.print(str(verdict))
    raise typer.Exit(1)
