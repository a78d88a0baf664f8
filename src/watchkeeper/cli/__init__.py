"""``watchkeeper``: the command line. Settings are read once, here, from the environment.

One module per command group (``db``, ``token``, ``incidents`` …), each holding its own ``typer.Typer``
``app``, registered below with one ``add_typer`` line; ``toplevel`` holds the root commands (``serve``,
``replay``, ``kpi``, ``demo``); ``common`` what they share (consoles, the service or the remote client,
who acts, the root group that turns Watchkeeper's errors into exit code 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from watchkeeper import value_cli
from watchkeeper.cli import (
    approvals,
    audit,
    bus,
    correlation,
    db,
    deadletter,
    incidents,
    logs,
    rca,
    runbooks,
    silences,
    token,
    toplevel,
    worker,
)
from watchkeeper.cli.common import (
    STATE,
    Group,
    actor,
    approver,
    backend,
    dumps,
    err,
    local_only,
    out,
    service,
    settings,
    unix_user,
)
from watchkeeper.console_cli import app as console_users_app
from watchkeeper.integrations.cli import app as integrations_app
from watchkeeper.watch.cli import app as watch_app

# The shared helpers stay importable from here too, as they were from the single-file cli.py (a
# command module written against it keeps working); new modules import them from cli.common.
__all__ = ["STATE", "actor", "app", "approver", "backend", "dumps", "err", "local_only", "main", "out", "service",
           "settings", "unix_user"]

app = typer.Typer(no_args_is_help=True, add_completion=False, cls=Group)
app.registered_commands.extend(toplevel.app.registered_commands)  # serve, replay, kpi, demo: at the root
app.add_typer(db.app, name="db")
app.add_typer(token.app, name="token")
app.add_typer(incidents.app, name="incidents")
app.add_typer(audit.app, name="audit")
app.add_typer(deadletter.app, name="deadletter")
app.add_typer(runbooks.app, name="runbooks")
app.add_typer(approvals.app, name="approvals")
app.add_typer(silences.app, name="silences")
app.add_typer(correlation.app, name="correlation")
app.add_typer(watch_app, name="watch")
app.add_typer(rca.app, name="rca")
app.add_typer(console_users_app, name="user")
app.registered_groups.extend(integrations_app.registered_groups)  # outbox, routes
app.add_typer(value_cli.app)  # usecases, gates, report, assess, models
app.add_typer(logs.app, name="logs")
from watchkeeper.cli import logs_inputs  # noqa: E402,F401 - adds 'logs sources' to the logs group (docs/logs.md)

app.add_typer(bus.app, name="bus")  # the NATS JetStream bus (docs/scaling.md)
app.registered_commands.extend(worker.app.registered_commands)  # watchkeeper worker


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


def main() -> None:
    app()
