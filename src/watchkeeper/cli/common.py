"""What every command module shares: the consoles, table and time helpers, the settings, opening the service
or the remote client, who acts, and the root group that turns Watchkeeper's errors into exit code 2."""

from __future__ import annotations

import functools
import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import typer.main
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from watchkeeper.errors import AuthError, WatchkeeperError
from watchkeeper.service import Permission, Watchkeeper
from watchkeeper.settings import Settings, load_settings

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@functools.cache
def _lazy(name: str) -> Any:
    """Sub-commands whose imports are heavy (numpy, matplotlib …), built only when used."""
    if name == "metrics":
        from watchkeeper.metrics.cli import app as metrics
        from watchkeeper.metrics.forecast_cli import forecast

        metrics.command("forecast", help="When will a utilisation series cross a threshold?")(forecast)
        return typer.main.get_command(metrics)
    if name == "lab":
        from watchkeeper.lab.cli import app as lab

        return typer.main.get_command(lab)
    from watchkeeper.eval.cli import app as evaluate
    from watchkeeper.eval.forecast_cli import forecast as eval_forecast

    evaluate.command("forecast", help="Forecast accuracy (MASE, sMAPE) and threshold lead times.")(eval_forecast)
    from watchkeeper.eval.rca_cli import rca as eval_rca
    evaluate.command("rca", help="Root-cause ranking: top-k, Avg@5, reliability (Nezha, lab).")(eval_rca)
    from watchkeeper.eval.correlation_cli import app as correlation

    for command in correlation.registered_commands:
        evaluate.registered_commands.append(command)
    return typer.main.get_command(evaluate)


LAZY = {"metrics": "Metrics: anomaly detection and capacity forecasting.",
        "eval": "Evaluate Watchkeeper: NAB, SMD, forecasting, correlation, telecom alarm graph.",
        "lab": "The lab: local services to watch, break and heal (fault injection, remediation)."}


class Group(TyperGroup):
    """Turn Watchkeeper's own errors into one sentence on stderr and exit code 2; load heavy
    sub-commands lazily."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *LAZY]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in LAZY:
            command = _lazy(cmd_name)
            command.name, command.help = cmd_name, LAZY[cmd_name]
            return _tidy(command)
        return _tidy(super().get_command(ctx, cmd_name))

    def get_help_option(self, ctx: Any) -> Any:
        _tidy(self)
        return super().get_help_option(ctx)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except WatchkeeperError as exc:
            err.print(f"error: {exc}", markup=False, soft_wrap=True)
            raise typer.Exit(2) from None


#: Columns whose text an operator copies into the next command: never wrapped or cut.
_WHOLE = frozenset({"id", "fingerprint", "runbook", "incident"})
#: Columns of free text: the only ones that wrap.
_ONE_LINE = frozenset({"error", "body", "title", "why", "comment", "matchers", "why they joined", "joined because"})


def make_table(*headers: str, **kwargs: Any) -> Table:
    """A table that stays readable at 80 columns: no vertical rules; only free text wraps, so ids
    and states stay whole (long free text is cut by the caller: the full text is in --json)."""
    from rich import box
    from rich.table import Column

    columns = [Column(h, no_wrap=h not in _ONE_LINE, overflow="fold") for h in headers]
    return Table(*columns, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 2, 0, 0), collapse_padding=True,
                 **kwargs)


def cut(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters (``…`` when cut)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _tidy(command: Any) -> Any:
    """Show no ``<bool>`` type next to flags in ``--help`` (a flag takes no value), in every
    sub-command (the help option included)."""
    if command is None:
        return None
    if not getattr(command, "_wk_tidy", False):
        command._wk_tidy = True
        get_help_option = command.get_help_option

        def help_option(ctx: Any) -> Any:
            option = get_help_option(ctx)
            if option is not None:
                option.metavar = ""
            return option

        command.get_help_option = help_option
    for param in getattr(command, "params", ()):
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _tidy(sub)
    return command


class _State:
    settings: Settings | None = None
    config: Path | None = None
    url: str | None = None
    token: str | None = None


STATE = _State()


def settings() -> Settings:
    if STATE.settings is None:
        STATE.settings = load_settings(os.environ, STATE.config)
    return STATE.settings


@contextmanager
def service(runbooks_dir: Path | None = None) -> Iterator[Watchkeeper]:
    local_only("this command")
    cfg = settings()
    if runbooks_dir is not None:
        cfg = cfg.model_copy(update={"runbooks_dir": runbooks_dir})
    _warn_if_new(cfg.database_url)
    wk = Watchkeeper(cfg, metrics=False)
    try:
        wk.upgrade()
        yield wk
    finally:
        wk.close()


@contextmanager
def backend() -> Iterator[Any]:
    """The server's API when ``--url`` / ``WATCHKEEPER_URL`` is given, else the database (the
    commands that use this accept either: they call the same methods)."""
    if STATE.url is None:
        with service() as wk:
            yield wk
        return
    from watchkeeper.client import Remote

    remote = Remote(STATE.url, STATE.token)
    try:
        yield remote
    finally:
        remote.close()


def local_only(what: str) -> None:
    """Commands that need the database itself refuse ``--url`` with a sentence."""
    if STATE.url is not None:
        raise WatchkeeperError(f"{what} works on the database, not through --url (only incidents, kpi, "
                               "approvals, deadletter, audit, usecases, gates and models commands do): run it "
                               "where serve runs, without --url / WATCHKEEPER_URL")


def _warn_if_new(url: str) -> None:
    """Say so when a command is about to create an empty SQLite database (a CLI run in another
    directory than serve's would otherwise show an empty, healthy-looking world)."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # a bad URL is reported by the database layer, with its own sentence
        return
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return
    path = Path(parsed.database)
    if not path.exists():
        err.print(f"note: no database at {path.resolve()}; creating an empty one. To see serve's data, run "
                  "where serve runs, or pass its settings (--config FILE or WATCHKEEPER_DATABASE_URL).",
                  soft_wrap=True, markup=False)


def unix_user() -> str:
    """The user this process runs as, from the OS (not ``$USER``, which anyone can set)."""
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, OSError):
        try:
            return getpass.getuser()
        except (KeyError, OSError):
            return "unknown"


def actor() -> str:
    """Who the audit log says acted: the approver a ``cli_users`` mapping names, or the unix user."""
    unix = unix_user()
    if STATE.url is not None:  # through the API the server records the token's name instead
        return f"cli:{unix}"
    mapped = settings().cli_users.get(unix)
    return f"cli-user:{mapped} via unix user {unix}" if mapped else f"cli:{unix}"


def approver(wk: Watchkeeper, token: str | None) -> str:
    """The person voting on an approval from the CLI: an approver's token (``--token`` or
    ``WATCHKEEPER_TOKEN``) or a ``cli_users`` mapping of this unix user. Never ``$USER``."""
    configured = settings().token
    secret = token or STATE.token or (configured.get_secret_value() if configured is not None else None)
    if secret:
        try:
            who = wk.authenticate(f"Bearer {secret.strip()}")
            who.require(Permission.APPROVE)
        except AuthError as exc:
            raise WatchkeeperError(f"--token/WATCHKEEPER_TOKEN: {exc}; voting needs a token of role "
                                   "approver or admin") from None
        return f"token:{who.name}"
    unix = unix_user()
    if unix in settings().cli_users:
        return actor()
    raise WatchkeeperError(
        f"voting on an approval needs an approver's identity, not the unix user {unix!r}: pass --token TOKEN "
        "or set WATCHKEEPER_TOKEN (a token of role approver or admin: 'watchkeeper token create --role "
        f"approver --name YOUR_NAME'), or map this unix user in the settings file: 'cli_users: {{{unix}: YOUR_NAME}}'")


def dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS).decode()


RunbooksDir = Annotated[Path | None, typer.Option("--dir", help="Runbooks directory (default: settings)")]


def stamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"
