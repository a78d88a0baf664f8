"""``watchkeeper token``: API tokens (created, listed, revoked, rotated; stored hashed)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated

import typer

from watchkeeper.cli.common import (
    actor,
    dumps,
    err,
    make_table,
    out,
    service,
    stamp,
)
from watchkeeper.errors import WatchkeeperError
from watchkeeper.service import Role

app = typer.Typer(no_args_is_help=True, help="API tokens (stored hashed).")


@app.command("create")
def token_create(
    role: Annotated[Role, typer.Option(help="ingest | viewer | operator | approver | admin")],
    name: Annotated[str | None, typer.Option(help="Who or what uses it")] = None,
    expires: Annotated[str | None, typer.Option(help=(
        "Lifetime: 90d, 12h, 2w … (default: the setting token_default_days, 90); "
        "'never' for ingest tokens only"))] = None,
) -> None:
    """Create an API token; it is printed once, as the last line."""
    label = name or f"{role.value}-{datetime.now().strftime('%Y%m%d%H%M%S')}"
    with service() as wk:
        made = wk.issue_token(role, label, actor(), expires)
    err.print(f"token {made.id} {label!r} with role {role.value}, expires {_expiry(made.expires_at)} "
              "(shown once; store it safely):", markup=False)
    print(made.secret)


def _expiry(at: datetime | None) -> str:
    return "never" if at is None else f"{stamp(at)}Z"


@app.command("list")
def token_list(as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False) -> None:
    """List tokens with their expiry, last use and state (never their values)."""
    with service() as wk:
        infos, now = wk.token_infos(), wk.clock()
    if as_json:
        for info in infos:
            print(dumps({**dataclasses.asdict(info), "state": info.state(now).value}))
        return
    # days (UTC) and one space between columns keep it within 80 columns (a long name wraps); --json: times
    table = make_table("id", "name", "role", "created", "expires", "last used", "revoked", "state")
    table.padding, table.columns[1].no_wrap, table.columns[1].min_width = (0, 0, 0, 0), False, 12
    for i in infos:
        table.add_row(str(i.id), i.name, i.role, _day(i.created_at), _day(i.expires_at) if i.expires_at else "never",
                      _day(i.last_used_at), _day(i.revoked_at), i.state(now).value)
    out.print(table)


def _day(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d") if at else "-"


@app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token by id (it stops working within 5 seconds on a running server)."""
    with service() as wk:
        if not wk.revoke_token(token_id, actor()):
            raise WatchkeeperError(f"no unrevoked token with id {token_id}; see 'watchkeeper token list'")
    out.print(f"token {token_id} revoked")


@app.command("rotate")
def token_rotate(
    token_id: int,
    grace: Annotated[str, typer.Option(help=(
        "How long the old token keeps working (e.g. 1h, at most 7d); default 0s: revoked at once"))] = "0s",
    expires: Annotated[str | None, typer.Option(help=(
        "The new token's lifetime (default: token_default_days, or never if the old one never expired)"))] = None,
) -> None:
    """Give a token a new secret, same name and role; the new one is printed once, as the last line."""
    from watchkeeper.tokens import MAX_GRACE, parse_span

    wait = parse_span(grace, what="--grace", limit=MAX_GRACE, allow_zero=True)
    with service() as wk:
        made = wk.rotate_token(token_id, actor(), grace=grace, expires=expires)
    when = f"valid for {grace.strip()} more" if wait else "revoked now"
    err.print(f"token {token_id} {made.name!r} rotated: the old one is {when}; new token {made.id} with role "
              f"{made.role.value}, expires {_expiry(made.expires_at)} (shown once; store it safely):", markup=False)
    print(made.secret)
