"""``watchkeeper user``: the people who sign in to the web console (docs/console.md); registered in
``watchkeeper.cli`` with one add_typer line.

Passwords come from a prompt (typed twice, never echoed) or from standard input with
``--password-stdin`` (for scripts); never from an argument, which ``ps`` and shell history show.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from watchkeeper.cli.common import actor, dumps, make_table, out, service, settings
from watchkeeper.errors import InputError
from watchkeeper.service import Role

if TYPE_CHECKING:
    from watchkeeper.server.console.accounts import Accounts

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Console users: create, list, disable, set a password.")


@contextmanager
def _accounts() -> Iterator[Accounts]:
    from watchkeeper.server.console.accounts import Accounts

    with service() as wk:
        yield Accounts(wk.db, wk.clock, settings().console)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise InputError("--password-stdin: standard input is empty; pipe the password in")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InputError("no terminal to prompt for the password on: pass --password-stdin and pipe it in")
    first = typer.prompt("password", hide_input=True)
    if typer.prompt("again", hide_input=True) != first:
        raise InputError("the two passwords differ; nothing was changed")
    return str(first)


@app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="The name the person signs in with (and the audit log shows)")],
    role: Annotated[Role, typer.Option(help="viewer | operator | approver | admin (ingest is for senders)")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
    sso_only: Annotated[bool, typer.Option("--sso-only", help="No password: signs in only through the "
                                           "reverse proxy's trusted header (console.sso_header)")] = False,
) -> None:
    """Create a console user (the password is hashed with argon2)."""
    if role is Role.INGEST:
        raise InputError("the ingest role is for senders of alerts (API tokens), not for people; "
                         "choose viewer, operator, approver or admin")
    password = None if sso_only else _password(password_stdin)
    with _accounts() as accounts:
        made = accounts.create(name, role, password, actor())
    how = "through the SSO header only" if made.sso_only else "with a password"
    print(f"user {made.id} {made.name!r} with role {made.role}, signs in {how}")


@app.command("list")
def user_list(as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False) -> None:
    """List console users, their roles, last sign-in and state (never their hashes)."""
    with _accounts() as accounts:
        users = accounts.users()
    if as_json:
        for u in users:
            print(dumps(dataclasses.asdict(u)))
        return
    table = make_table("id", "name", "role", "created", "last sign-in", "state")
    for u in users:
        state = "disabled" if u.disabled_at else ("sso only" if u.sso_only else "active")
        table.add_row(str(u.id), u.name, u.role, _day(u.created_at), _day(u.last_login_at), state)
    out.print(table)


def _day(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M}Z"


@app.command("disable")
def user_disable(name: str) -> None:
    """Disable a user: their sessions end at once; the name stays in the audit log."""
    with _accounts() as accounts:
        ended = accounts.disable(name, actor())
    print(f"user {name!r} disabled; {ended} session(s) ended")


@app.command("password")
def user_password(
    name: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin")] = False,
) -> None:
    """Set a user's password (their sessions end)."""
    password = _password(password_stdin)
    with _accounts() as accounts:
        accounts.set_password(name, password, actor())
    print(f"password of {name!r} set; their sessions ended")
