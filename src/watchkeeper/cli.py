"""``watchkeeper``: the command line. Settings are read once, here, from the environment."""

from __future__ import annotations

import dataclasses
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

from watchkeeper import value_cli
from watchkeeper.errors import AuthError, ConfigError, WatchkeeperError
from watchkeeper.lifecycle import Action
from watchkeeper.model import IncidentStatus
from watchkeeper.service import Permission, Role, Watchkeeper
from watchkeeper.settings import Settings, load_settings
from watchkeeper.watch.cli import app as watch_app

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


class _Group(TyperGroup):
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


def _table(*headers: str, **kwargs: Any) -> Table:
    """A table that stays readable at 80 columns: no vertical rules; only free text wraps, so ids
    and states stay whole (long free text is cut by the caller: the full text is in --json)."""
    from rich import box
    from rich.table import Column

    columns = [Column(h, no_wrap=h not in _ONE_LINE, overflow="fold") for h in headers]
    return Table(*columns, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 2, 0, 0), collapse_padding=True,
                 **kwargs)


def _cut(text: str, limit: int) -> str:
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


app = typer.Typer(no_args_is_help=True, add_completion=False, cls=_Group)
db_app = typer.Typer(no_args_is_help=True, help="Database migrations.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens (stored hashed).")
incidents_app = typer.Typer(no_args_is_help=True, help="List, inspect and work incidents.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
deadletter_app = typer.Typer(no_args_is_help=True, help="Rejected ingest bodies.")
runbooks_app = typer.Typer(no_args_is_help=True, help="Runbooks: validate, inspect, run; evidence and breakers.")
approvals_app = typer.Typer(no_args_is_help=True, help="Approve or reject pending actions.")
correlation_app = typer.Typer(no_args_is_help=True, help="Correlation configuration and learned co-occurrence.")
silences_app = typer.Typer(no_args_is_help=True, help="Mute alerts by matchers for a while (maintenance).")
rca_app = typer.Typer(no_args_is_help=True, help="Root-cause ranking: refit its confidence model.")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(incidents_app, name="incidents")
app.add_typer(audit_app, name="audit")
app.add_typer(deadletter_app, name="deadletter")
app.add_typer(runbooks_app, name="runbooks")
app.add_typer(approvals_app, name="approvals")
app.add_typer(silences_app, name="silences")
app.add_typer(correlation_app, name="correlation")
app.add_typer(watch_app, name="watch")
app.add_typer(rca_app, name="rca")
app.add_typer(value_cli.app)  # usecases, gates, report, assess, models



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
                               "approvals, deadletter and audit commands do): run it where serve runs, "
                               "without --url / WATCHKEEPER_URL")


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


@app.callback()
def _main(
    config: Annotated[Path | None, typer.Option(help="YAML settings file (env vars win)")] = None,
    url: Annotated[str | None, typer.Option(
        envvar="WATCHKEEPER_URL", help="A running server's URL: incident, KPI, approval, dead-letter and "
        "audit commands go to its API instead of a database file")] = None,
    token: Annotated[str | None, typer.Option(
        envvar="WATCHKEEPER_TOKEN", help="API token for --url, and whom an approval vote is cast as (its role "
        "decides what you may do)")] = None,
) -> None:
    """Watchkeeper: alert storms in, a few explained incidents out, every step audited."""
    STATE.config, STATE.settings, STATE.url, STATE.token = config, None, url, token


# -- serve ---------------------------------------------------------------------------------
@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080)")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML settings file (same as the global --config)")] = None,
) -> None:
    """Run the API and the loop: watches, ranking, decisions, actions (migrations run at start-up)."""
    import uvicorn

    from watchkeeper import logs
    from watchkeeper.server import create_app

    if config is not None:
        STATE.config, STATE.settings = config, None
    cfg = settings()
    bind_host, bind_port = host or cfg.host, cfg.port if port is None else port
    _check_free(bind_host, bind_port)
    logs.configure(cfg.log_level)
    wk = Watchkeeper(cfg)
    wk.upgrade()
    err.print(f"watchkeeper {_db_label(cfg)} listening on http://{bind_host}:{bind_port}")
    uvicorn.run(
        create_app(wk, upgrade=False), host=bind_host, port=bind_port,
        log_level=cfg.log_level, access_log=False,
    )


def _check_free(host: str, port: int) -> None:
    """Fail with a sentence before saying "listening" when the address cannot be bound."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; is another server "
                              "running there? choose another with --port or 'port:' in the settings") from None


def _db_label(cfg: Settings) -> str:
    return "on SQLite" if cfg.database_url.startswith("sqlite") else "on PostgreSQL"


# -- db ------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply every pending migration."""
    with service() as wk:
        out.print(f"database at revision {wk.db.current_revision()}")


@db_app.command("prune")
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


# -- tokens --------------------------------------------------------------------------------
@token_app.command("create")
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
    return "never" if at is None else f"{_t(at)}Z"


@token_app.command("list")
def token_list(as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False) -> None:
    """List tokens with their expiry, last use and state (never their values)."""
    with service() as wk:
        infos, now = wk.token_infos(), wk.clock()
    if as_json:
        for info in infos:
            print(dumps({**dataclasses.asdict(info), "state": info.state(now).value}))
        return
    # days (UTC) and one space between columns keep it within 80 columns (a long name wraps); --json: times
    table = _table("id", "name", "role", "created", "expires", "last used", "revoked", "state")
    table.padding, table.columns[1].no_wrap, table.columns[1].min_width = (0, 0, 0, 0), False, 12
    for i in infos:
        table.add_row(str(i.id), i.name, i.role, _day(i.created_at), _day(i.expires_at) if i.expires_at else "never",
                      _day(i.last_used_at), _day(i.revoked_at), i.state(now).value)
    out.print(table)


def _day(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d") if at else "-"


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token by id (it stops working within 5 seconds on a running server)."""
    with service() as wk:
        if not wk.revoke_token(token_id, actor()):
            raise WatchkeeperError(f"no unrevoked token with id {token_id}; see 'watchkeeper token list'")
    out.print(f"token {token_id} revoked")


@token_app.command("rotate")
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


# -- incidents -----------------------------------------------------------------------------
def _t(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@incidents_app.command("list")
def incidents_list(
    status: Annotated[IncidentStatus | None, typer.Option(help="Only incidents in this state")] = None,
    service_name: Annotated[str | None, typer.Option("--service", help="Only this service")] = None,
    since: Annotated[datetime | None, typer.Option(help="Opened at or after (ISO 8601)")] = None,
    limit: int = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """List incidents, newest first."""
    with backend() as wk:
        found = wk.incidents(status=status.value if status else None, service=service_name, since=since, limit=limit)
    if as_json:
        for incident in found:
            print(dumps(incident))
        return
    table = _table("id", "status", "sev", "services", "alerts", "opened", "title")
    for i in found:
        table.add_row(str(i["id"]), i["status"], i["severity"], ",".join(i["services"]),
                      f"{i['firing_alerts']}/{i['alert_count']}", _t(i["opened_at"]), i["title"])
    out.print(table)


@incidents_app.command("show")
def incidents_show(
    incident_id: int, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """One incident with its alerts (and why each joined) and its timeline."""
    with backend() as wk:
        found = wk.incident(incident_id)
    if as_json:
        print(dumps(found))
        return
    _print_incident(found)


def _print_incident(i: dict[str, Any]) -> None:
    out.print(f"[bold]Incident {i['id']}[/bold] [{i['status']}] {i['severity']} — {i['title']}")
    out.print(f"services: {', '.join(i['services'])}   opened {_t(i['opened_at'])}   "
              f"acknowledged {_t(i['acknowledged_at'])}   resolved {_t(i['resolved_at'])}   "
              f"assignee {i['assignee'] or '-'}")
    if i.get("started_at") or i.get("first_acknowledged_at"):
        out.print(f"started at the source {_t(i.get('started_at'))}   first acknowledged "
                  f"{_t(i.get('first_acknowledged_at'))}   first mitigated {_t(i.get('first_mitigated_at'))}")
    alerts = _table("fingerprint", "alert", "status", "count", "joined because", title="alerts")
    for a in i["alerts"]:
        alerts.add_row(a["fingerprint"], a["name"] or a["summary"], a["status"], str(a["count"]),
                       f"{a['reason']}: {a['reason_detail']}")
    out.print(alerts)
    if i.get("causes"):
        causes = _table("rank", "component", "kind", "confidence", "model", title="ranked causes")
        for n, c in enumerate(i["causes"], start=1):
            causes.add_row(str(n), c["component"], c["kind"], f"{c['confidence']:.2f}", c["model"])
        out.print(causes)
    if i.get("decisions"):
        decisions = _table("id", "runbook", "verdict", "why", "confidence", "outcome", title="policy decisions")
        for d in i["decisions"]:
            confidence = "-" if d["confidence"] is None else f"{d['confidence']:.2f} (≥{d['threshold']:.2f})"
            decisions.add_row(str(d["id"]), d["runbook_id"], d["verdict"], d["reason"], confidence, d["outcome"] or "-")
        out.print(decisions)
    if i.get("actions"):
        actions = _table("id", "runbook", "trigger", "status", "verification", "finished", title="action runs")
        for a in i["actions"]:
            actions.add_row(str(a["id"]), a["runbook_id"], f"{a['trigger']} by {a['actor']}", a["status"],
                            a["verification"] or "-", _t(a["finished_at"]))
        out.print(actions)
    timeline = _table("at", "actor", "what", title="timeline")
    for t in i.get("timeline", []):
        detail = t.get("comment") or t.get("text") or t.get("detail") or ""
        timeline.add_row(_t(t["at"]), t["actor"], f"{t['kind']} {detail}".strip())
    out.print(timeline)


def _lifecycle(action: Action, incident_id: int, text: str) -> None:
    with backend() as wk:
        found = wk.act(incident_id, action, actor(), text)
    out.print(f"incident {incident_id}: {found['status']}"
              + (f", assigned to {found['assignee']}" if found["assignee"] else ""))


@incidents_app.command("ack")
def incidents_ack(incident_id: int, comment: str = "") -> None:
    """Acknowledge an incident."""
    _lifecycle(Action.ACKNOWLEDGE, incident_id, comment)


@incidents_app.command("mitigate")
def incidents_mitigate(incident_id: int, comment: str = "") -> None:
    """Mark an incident mitigated."""
    _lifecycle(Action.MITIGATE, incident_id, comment)


@incidents_app.command("resolve")
def incidents_resolve(
    incident_id: int, comment: str = "",
    fixed_by: Annotated[str | None, typer.Option(help="runbook id that fixed it, 'manual' or 'nothing'")] = None,
    harmful: Annotated[list[str] | None, typer.Option(help="a runbook that would have done harm (repeatable)")] = None,
    cause: Annotated[str | None, typer.Option(help="the service that really caused it (what 'rca calibrate' "
                                                   "learns from)")] = None,
) -> None:
    """Resolve an incident (saying what fixed it scores the runbooks' shadow decisions)."""
    with backend() as wk:
        extra: dict[str, Any] = {}
        if cause is not None and isinstance(wk, Watchkeeper):
            from watchkeeper.ranking import record_cause

            record_cause(wk, incident_id, cause, actor())
        elif cause is not None:
            extra["cause"] = cause  # the server records it
        found = wk.act(incident_id, Action.RESOLVE, actor(), comment, fixed_by=fixed_by, harmful=harmful or [],
                       **extra)
    out.print(f"incident {incident_id}: {found['status']}" + (f", caused by {cause.strip()}" if cause else ""))


@rca_app.command("calibrate")
def rca_calibrate(
    out_file: Annotated[Path | None, typer.Option("--out", help="where to write the model (default: the "
                                                                "settings' rca.calibration)")] = None,
) -> None:
    """Refit the confidence of ranked causes on your resolved incidents with a recorded true cause
    (at least 20); serve reads the file that rca.calibration names."""
    import json

    from watchkeeper.ranking import calibrate

    local_only("rca calibrate")
    target = out_file or settings().rca.calibration
    if target is None:
        raise WatchkeeperError("say where to write the model: --out FILE, or rca.calibration in the settings")
    with service() as wk:
        fitted = calibrate(wk)
    try:
        target.write_text(json.dumps(fitted.model, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise WatchkeeperError(f"cannot write {target}: {exc}") from None
    out.print(f"fitted on {fitted.incidents} incidents (top-1 right in {100 * fitted.top1:.0f} %): "
              f"intercept {fitted.model['intercept']:g}, w_top {fitted.model['w_top']:g}, "
              f"w_margin {fitted.model['w_margin']:g}; written to {target}")


@incidents_app.command("merge")
def incidents_merge(incident_id: int, into: Annotated[int, typer.Option(help="incident that absorbs it")]) -> None:
    """Merge an incident into another (they were one problem)."""
    with backend() as wk:
        found = wk.merge(incident_id, into, actor())
    out.print(f"incident {incident_id} merged into {into}: {len(found['alerts'])} alerts")


@incidents_app.command("split")
def incidents_split(
    incident_id: int, fingerprint: Annotated[list[str], typer.Argument(help="alerts to split off")]
) -> None:
    """Split alerts off an incident into a new one (they were unrelated)."""
    with backend() as wk:
        found = wk.split(incident_id, list(fingerprint), actor())
    out.print(f"new incident {found['id']} with {len(found['alerts'])} alerts split from {incident_id}")


@incidents_app.command("move")
def incidents_move(fingerprint: str, to: Annotated[int, typer.Option("--to", help="incident it belongs to")]) -> None:
    """Move one alert to the incident it belongs to."""
    with backend() as wk:
        wk.move_alert(fingerprint, to, actor())
    out.print(f"alert {fingerprint} moved to incident {to}")


@incidents_app.command("rank")
def incidents_rank(
    incident_id: int,
    component: Annotated[list[str], typer.Option(help="a probable cause, best first (repeatable)")],
    confidence: Annotated[list[float], typer.Option(help="its calibrated confidence, one per --component")],
    kind: str = "service",
) -> None:
    """Record ranked causes for an incident (what an RCA model or a human believes)."""
    from watchkeeper.model import Cause

    if len(component) != len(confidence) or not all(0 <= c <= 1 for c in confidence):
        raise WatchkeeperError("give one --confidence between 0 and 1 for each --component")
    with service() as wk:
        wk.governance.set_causes(
            incident_id, [Cause(c, kind, p, p, "manual") for c, p in zip(component, confidence, strict=True)], actor()
        )
    out.print(f"incident {incident_id}: {len(component)} causes recorded")


@incidents_app.command("reopen")
def incidents_reopen(incident_id: int, comment: str = "") -> None:
    """Reopen a resolved or mitigated incident."""
    _lifecycle(Action.REOPEN, incident_id, comment)


@incidents_app.command("assign")
def incidents_assign(incident_id: int, assignee: str) -> None:
    """Assign an incident to someone."""
    _lifecycle(Action.ASSIGN, incident_id, assignee)


@incidents_app.command("comment")
def incidents_comment(incident_id: int, text: str) -> None:
    """Add a comment to an incident's timeline."""
    _lifecycle(Action.COMMENT, incident_id, text)


# -- replay --------------------------------------------------------------------------------
@app.command()
def replay(
    file: Annotated[
        Path, typer.Argument(help="JSONL: one webhook body per line", exists=True, dir_okay=False)
    ],
    out_file: Annotated[Path | None, typer.Option("--out", help="Write incidents as JSONL here")] = None,
    window: Annotated[float | None, typer.Option(help="Correlation window, seconds")] = None,
    config_path: Annotated[Path | None, typer.Option("--correlation", help="Correlation config YAML")] = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first bad line (exit 2)")] = False,
    prometheus: Annotated[str | None, typer.Option(help="Rank each incident's causes from this Prometheus "
                                                        "(the watches of the settings, rca: true)")] = None,
    topology: Annotated[Path | None, typer.Option(help="Service graph for ranking (YAML/JSON services "
                                                       "mapping, or a lab topology.json)", exists=True,
                                                  dir_okay=False)] = None,
    changes: Annotated[Path | None, typer.Option(help="Change events for ranking (JSON or JSONL, as the "
                                                      "changes API takes them)", exists=True, dir_okay=False)] = None,
    settings_file: Annotated[Path | None, typer.Option("--config", help="YAML settings file (same as the global "
                                                                       "--config)")] = None,
) -> None:
    """Run the pipeline offline on a file, no server, and print or write the incidents (with
    --prometheus: each with its ranked "causes")."""
    from dataclasses import replace
    from datetime import timedelta

    from watchkeeper.correlate.config import load_config
    from watchkeeper.correlate.pipeline_config import PipelineConfig
    from watchkeeper.kpi import compression, dedup_ratio
    from watchkeeper.replay import incident_records
    from watchkeeper.replay import replay as run
    from watchkeeper.sources import registry

    if settings_file is not None:
        STATE.config, STATE.settings = settings_file, None
    cfg = settings()
    config = PipelineConfig(
        window=timedelta(seconds=window or cfg.correlation_window_seconds), auto_resolve=cfg.auto_resolve
    )
    path = config_path or cfg.correlation_config
    if path is not None:
        config = load_config(path).pipeline(path.parent)
        if window:
            config = replace(config, window=timedelta(seconds=window))
    with file.open("rb") as fh:
        result = run(fh, registry(), config, strict=strict)
    for bad in result.bad[:20]:
        err.print(f"line {bad.number}: skipped: {bad.error}")
    if len(result.bad) > 20:
        err.print(f"... and {len(result.bad) - 20} more bad lines")
    records = list(incident_records(result))
    if prometheus is not None or topology is not None or changes is not None:
        from watchkeeper.ranking import replay_causes
        from watchkeeper.replay import onsets

        ranked = replay_causes(onsets(result), cfg, prometheus=prometheus, topology=topology, changes_file=changes)
        for record in records:
            record["causes"] = ranked.get(record["id"], [])
    if out_file is not None:
        with out_file.open("wb") as fh:
            for record in records:
                fh.write(dumps(record).encode() + b"\n")
    else:
        for record in records:
            print(dumps(record))
    alerts = sum(len(r["alerts"]) for r in records)
    ratio, comp = dedup_ratio(result.events, len(result.state.alerts)), compression(alerts, len(records))
    err.print(
        f"{result.lines} lines, {result.events} events → {len(result.state.alerts)} alerts → "
        f"{len(records)} incidents (dedup {_pct(ratio)}, compression {_pct(comp)}); "
        f"{len(result.bad)} bad lines skipped" + (f"; written to {out_file}" if out_file else "")
    )
    if result.lines and len(result.bad) == result.lines:
        raise WatchkeeperError("no line of the file could be read")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


# -- KPIs ----------------------------------------------------------------------------------
@app.command()
def kpi(
    start: Annotated[datetime | None, typer.Option("--from", help="Window start (ISO 8601)")] = None,
    end: Annotated[datetime | None, typer.Option("--to", help="Window end (ISO 8601)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """MTTA, MTTR, deduplication and compression over incidents opened in a window."""
    from watchkeeper.model import utc

    with backend() as wk:
        report = wk.kpis(utc(start) if start else None, utc(end) if end else None)
    data = report if isinstance(report, dict) else report.as_dict()
    if as_json:
        print(dumps(data))
        return
    if isinstance(report, dict):  # from a server: its figures as they came
        table = _table("KPI", "value", title=f"Watchkeeper KPIs ({STATE.url})")
        for key, value in _flat(report):
            table.add_row(key, "n/a" if value is None else str(value))
        out.print(table)
        return
    table = _table("KPI", "value", title="Watchkeeper KPIs")
    table.add_row("events → alerts (dedup)",
                  f"{report.events} → {report.alerts} ({_pct(report.dedup_ratio)})")
    table.add_row("alerts → incidents (compression)",
                  f"{report.alerts} → {report.incidents} ({_pct(report.compression)})")
    g = report.grouping
    if g is not None:
        table.add_row("grouping precision (judged by humans)",
                      f"{_pct(g.precision)} ({g.moved_out} of {g.auto_joined} joins moved out; {g.merges} merges)")
    for label, stats in (("MTTA from receipt", report.mtta), ("MTTA from source start", report.mtta_from_source_start),
                         ("MTTR from receipt", report.mttr), ("MTTR from source start", report.mttr_from_source_start)):
        table.add_row(label, "n/a" if stats is None or stats.mean is None else (
            f"mean {_dur(stats.mean)}, median {_dur(stats.median)}, p90 {_dur(stats.p90)} (n={stats.count})"))
    out.print(table)


def _flat(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``{"mtta": {"mean": 1}}`` as ``[("mtta.mean", 1)]``."""
    if isinstance(value, dict):
        return [kv for k, v in value.items() for kv in _flat(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), value)]


def _dur(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


# -- audit and dead letters ----------------------------------------------------------------
@audit_app.command("verify")
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


@deadletter_app.command("list")
def deadletter_list(
    limit: int = 20, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """The newest rejected bodies, with the error each got."""
    with backend() as wk:
        rows = wk.dead_letters(limit)
    if as_json:
        for row in rows:
            print(dumps({**row, "body": row["body"].decode("utf-8", "replace")}))
        return
    table = _table("id", "received", "source", "status", "size", "error")
    for row in rows:
        table.add_row(str(row["id"]), _t(row["received_at"]), row["source"], str(row["status"]),
                      f"{row['size']}{'+' if row['truncated'] else ''}", _cut(row["error"], 90))
    if rows:
        table.caption = "bodies and whole errors: watchkeeper deadletter list --json"
    out.print(table)


# -- demo ----------------------------------------------------------------------------------
@app.command()
def demo(
    headless: Annotated[bool, typer.Option(help="No live view: end with one JSON line of outcomes")] = False,
    faults: Annotated[str | None, typer.Option(
        help="Comma-separated KIND[:SERVICE] (default: one fault of every kind)")] = None,
    auto_approve: Annotated[bool, typer.Option(help="Approve every pending action at once (unattended)")] = False,
    approve_after: Annotated[float | None, typer.Option(min=0, help=(
        "A stand-in approver answers requests nobody approved within this many seconds "
        "(default: 45 with the live view, never with --headless)"))] = None,
    directory: Annotated[Path, typer.Option("--dir", help="Working directory (wiped first, kept afterwards)")] = Path(
        ".watchkeeper-demo"),
    record: Annotated[Path | None, typer.Option(
        help="Also record the campaign (metrics, faults, topology) for 'eval rca --format lab'")] = None,
    warmup: Annotated[float, typer.Option(min=4, help="Seconds of healthy traffic before the first fault")] = 24.0,
    timeout: Annotated[float | None, typer.Option(min=10, help=(
        "Seconds to wait for each fault's resolution (default 150; 1800 with --manual)"))] = None,
    manual: Annotated[bool, typer.Option(help=(
        "Run no runbook: leave each fault for a person to find and fix with 'watchkeeper lab …' "
        "(the human baseline for MTTR; --timeout defaults to 1800)"))] = False,
    storm: Annotated[bool, typer.Option(help="Instead: replay a recorded Alertmanager storm (no lab)")] = False,
    database: Annotated[Path, typer.Option(help="--storm: SQLite file the replay writes")] = Path(
        "watchkeeper-demo.db"),
    speed: Annotated[float, typer.Option(help="--storm: simulated seconds per real second (0: flat out)")] = 0.0,
) -> None:
    """The whole loop, live: start the lab and Watchkeeper, inject faults, and watch detection,
    root cause, governed runbooks and resolution; a summary with MTTR per fault at the end."""
    if storm:
        _storm_demo(database, speed)
        return
    from watchkeeper.demo import cli as demo_cli

    if manual and (auto_approve or approve_after is not None):
        out.print("[red]error:[/red] --manual runs no runbook, so there is nothing to approve: drop --auto-approve "
                  "and --approve-after")
        raise typer.Exit(2)
    if auto_approve:
        approve_after = 0.0
    elif approve_after is None and not headless and not manual:
        approve_after = 45.0
    code = demo_cli.main(out, directory=directory, faults=faults, headless=headless, approve_after=approve_after,
                         record=record, warmup=warmup, timeout=timeout if timeout is not None else
                         (1800.0 if manual else 150.0), manual=manual)
    if code:
        raise typer.Exit(code)


def _storm_demo(database: Path, speed: float) -> None:
    """Replay a realistic alert storm through a live server and show what Watchkeeper made of it."""
    from rich.progress import Progress

    from watchkeeper.demo import storm as demo_mod

    out.rule("[bold]Watchkeeper demo[/bold]")
    out.print("A live Watchkeeper on 127.0.0.1 (SQLite, in-process) receives, over HTTP, what "
              "Alertmanager would send during a simulated 10-minute morning: two overlapping outages "
              f"and a disk warning. A simulated on-call engineer acknowledges each incident "
              f"{demo_mod.ACK_AFTER_S // 60}m{demo_mod.ACK_AFTER_S % 60:02d}s after it opens; "
              "incidents resolve when their alerts do. Times below are simulated time.")
    with Progress(console=out, transient=True) as progress:
        result = demo_mod.run(database, speed=speed, progress=progress)
    alerts = sum(len(i["alerts"]) for i in result.incidents)
    out.print(f"\n[bold]{result.webhooks}[/bold] webhooks carrying [bold]{result.alert_events}[/bold] "
              f"alert notifications → [bold]{alerts}[/bold] distinct alerts → "
              f"[bold]{len(result.incidents)}[/bold] incidents\n")
    table = _table("id", "status", "sev", "services", "alerts", "why they joined", title="incidents")
    for i in sorted(result.incidents, key=lambda i: i["id"]):
        reasons: dict[str, int] = {}
        for a in i["alerts"]:
            reasons[a["reason"]] = reasons.get(a["reason"], 0) + 1
        table.add_row(str(i["id"]), i["status"], i["severity"], ",".join(i["services"]),
                      str(len(i["alerts"])), ", ".join(f"{n}× {r}" for r, n in reasons.items()))
    out.print(table)
    k = result.kpis
    summary = _table("KPI", "value", title="KPIs")
    summary.add_row("events → alerts (dedup)", f"{k['events']} → {k['alerts']} ({_pct(k['dedup_ratio'])})")
    summary.add_row("alerts → incidents (compression)",
                    f"{k['alerts']} → {k['incidents']} ({_pct(k['compression'])})")
    summary.add_row("MTTA (mean)", _dur(k["mtta"]["mean"]))
    summary.add_row("MTTR (mean / p90)", f"{_dur(k['mttr']['mean'])} / {_dur(k['mttr']['p90'])}")
    summary.add_row("audit chain", result.audit)
    out.print(summary)
    out.print(f"\nExplore it: [bold]WATCHKEEPER_DATABASE_URL=sqlite:///{result.database} "
              "watchkeeper incidents show 1[/bold]  (or incidents list, kpi, audit verify)")
    if not result.audit_ok:
        raise typer.Exit(1)


# -- correlation ---------------------------------------------------------------------------
@correlation_app.command("validate")
def correlation_validate(file: Annotated[Path, typer.Argument(help="correlation YAML")]) -> None:
    """Check a correlation config; exit 2 naming file:line of every problem."""
    from watchkeeper.correlate.config import load_config

    config = load_config(file)
    out.print(f"OK: window {config.window:g}s, strategies {', '.join(s.type for s in config.strategies)}, "
              f"{len(config.inhibit_rules)} inhibit rules")


@correlation_app.command("learn")
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


# -- silences ------------------------------------------------------------------------------
@silences_app.command("add")
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
    out.print(f"silence {made['id']}: {' '.join(made['matchers'])} until {_t(made['ends_at'])}Z")


@silences_app.command("list")
def silences_list(expired: Annotated[bool, typer.Option(help="include ended silences")] = False) -> None:
    """Active silences (or all)."""
    with service() as wk:
        rows = wk.silences(active=not expired)
    table = _table("id", "matchers", "starts", "ends", "by", "comment")
    for r in rows:
        table.add_row(str(r["id"]), " ".join(r["matchers"]), _t(r["starts_at"]), _t(r["ends_at"]), r["created_by"],
                      r["comment"])
    out.print(table)


@silences_app.command("expire")
def silences_expire(silence_id: int) -> None:
    """End a silence now."""
    with service() as wk:
        wk.expire_silence(silence_id, actor())
    out.print(f"silence {silence_id} ended")


# -- runbooks ------------------------------------------------------------------------------
RunbooksDir = Annotated[Path | None, typer.Option("--dir", help="Runbooks directory (default: settings)")]


@runbooks_app.command("validate")
def runbooks_validate(directory: Annotated[Path, typer.Argument(help="Directory of runbook YAML files")]) -> None:
    """Report every error with its file and line; exit 1 if there is any."""
    from watchkeeper.execute.runbook import load_catalog

    catalog = load_catalog(directory)
    for problem in catalog.problems:
        err.print(str(problem), markup=False)
    if catalog.problems:
        err.print(f"{len(catalog.problems)} problem(s) in {directory}")
        raise typer.Exit(1)
    out.print(f"OK: {len(catalog.runbooks)} runbooks valid"
              + (", policy.yaml valid" if (directory / "policy.yaml").exists() else ""))


@runbooks_app.command("schema")
def runbooks_schema() -> None:
    """Print the runbook JSON Schema (for editors and CI)."""
    from watchkeeper.execute.runbook import json_schema

    print(orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2).decode())


@runbooks_app.command("list")
def runbooks_list(directory: RunbooksDir = None) -> None:
    """Runbooks with their autonomy, risk, shadow evidence and breaker state."""
    with service(directory) as wk:
        evidence = wk.governance.evidence()
        runbooks = list(wk.governance.catalog.runbooks.values())
    if not runbooks:
        err.print("no runbooks configured: put runbook YAML files in a directory and name it with "
                  "'runbooks_dir:' in the settings, WATCHKEEPER_RUNBOOKS_DIR or --dir (examples: "
                  "examples/runbooks/; check them with 'watchkeeper runbooks validate DIR')", soft_wrap=True)
        return
    table = _table("id", "autonomy", "risk", "shadow", "breaker", "title")
    for rb in runbooks:
        e = evidence[rb.id]
        precision = "n/a" if e["shadow_precision"] is None else f"{e['shadow_precision']:.0%}"
        table.add_row(rb.id, rb.autonomy.value, rb.risk.value, f"{e['agreed']}/{e['scored']} {precision}",
                      "OPEN" if e["breaker_open"] else "closed", rb.title)
    out.print(table)


@runbooks_app.command("show")
def runbooks_show(runbook_id: str, directory: RunbooksDir = None) -> None:
    """One runbook as loaded, with its evidence."""
    with service(directory) as wk:
        rb = wk.governance.runbook(runbook_id)
        evidence = wk.governance.evidence()[runbook_id]
    print(dumps({**rb.model_dump(mode="json", by_alias=True, exclude_none=True), "evidence": evidence}))


@runbooks_app.command("run")
def runbooks_run(
    runbook_id: str,
    incident: Annotated[int, typer.Option(help="Incident to act on")],
    dry_run: Annotated[bool, typer.Option(help="Show the rendered steps; run nothing")] = False,
    directory: RunbooksDir = None,
) -> None:
    """Run a runbook for an incident now (or ask for approval when its level or risk needs it)."""
    with service(directory) as wk:
        gov = wk.governance
        proposed = gov.propose_manual(runbook_id, incident)
        if dry_run:
            print(dumps({"params": proposed.params, "plan": gov.plan(proposed.runbook, proposed.params, incident)}))
            return
        result = gov.run_manual(runbook_id, incident, actor())
        if "approval_id" in result:
            out.print(f"approval {result['approval_id']} requested: another approver must run "
                      f"'watchkeeper approvals approve {result['approval_id']}'")
            return
        gov.work()
        with wk.db.read() as conn:
            from watchkeeper.storage import governance as gov_store

            run = gov_store.action(conn, result["action_id"])
    out.print(f"action {run['id']}: {run['status']} (verification {run['verification']})")
    for step in (run["result"] or {}).get("steps", []):
        out.print(f"  {step['phase']:8} {step['name']}: {'ok' if step['ok'] else 'FAILED'} — {step['detail']}")
    if run["status"] != "succeeded":
        raise typer.Exit(1)


@runbooks_app.command("enable")
def runbooks_enable(runbook_id: str, directory: RunbooksDir = None) -> None:
    """Close a runbook's circuit breaker after a human has looked into its failures."""
    with service(directory) as wk:
        wk.governance.enable(runbook_id, actor())
    out.print(f"runbook {runbook_id}: breaker closed")


# -- approvals ------------------------------------------------------------------------------
@approvals_app.command("list")
def approvals_list(
    status: Annotated[str, typer.Option(help="pending | approved | rejected | expired | all")] = "pending",
    as_json: Annotated[bool, typer.Option("--json")] = False, directory: RunbooksDir = None,
) -> None:
    """Approval requests, newest first."""
    if STATE.url is not None:
        with backend() as remote:
            rows = remote.approvals(None if status == "all" else status)
    else:
        with service(directory) as wk:
            rows = wk.governance.approvals(None if status == "all" else status)
    if as_json:
        for row in rows:
            print(dumps(row))
        return
    table = _table("id", "incident", "runbook", "risk", "status", "requested by", "expires", "votes")
    for r in rows:
        approved = sum(v["approve"] for v in r["votes"])
        table.add_row(str(r["id"]), str(r["incident_id"]), r["runbook_id"], r["risk"], r["status"],
                      r["requested_by"], _t(r["expires_at"]), f"{approved}/{r['required']}")
    out.print(table)


def _vote(approval_id: int, approve: bool, comment: str, directory: Path | None, token: str | None) -> None:
    if STATE.url is not None:  # the server knows who votes: the token's name, checked for four-eyes
        STATE.token = token or STATE.token
        with backend() as remote:
            result = remote.vote(approval_id, actor(), approve, comment)
    else:  # the database: the token (or cli_users mapping) says who votes, never $USER
        with service(directory) as wk:
            result = wk.governance.vote(approval_id, approver(wk, token), approve, comment)
    out.print(f"approval {approval_id}: {result['status']}"
              + (f"; action {result['action_id']} queued" if "action_id" in result else ""))


VoteToken = Annotated[str | None, typer.Option(
    "--token", help="An approver's API token (default: WATCHKEEPER_TOKEN; or map your unix user in cli_users)")]


@approvals_app.command("approve")
def approvals_approve(approval_id: int, comment: str = "", directory: RunbooksDir = None,
                      token: VoteToken = None) -> None:
    """Approve a pending action as an approver (token or cli_users); it then runs on the server's worker."""
    _vote(approval_id, True, comment, directory, token)


@approvals_app.command("reject")
def approvals_reject(approval_id: int, comment: str = "", directory: RunbooksDir = None,
                     token: VoteToken = None) -> None:
    """Reject a pending action as an approver (token or cli_users)."""
    _vote(approval_id, False, comment, directory, token)


def main() -> None:
    app()


if __name__ == "__main__":  # python -m watchkeeper.cli (the demo starts serve this way)
    app()
