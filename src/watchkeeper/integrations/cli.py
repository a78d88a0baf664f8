"""``watchkeeper outbox list|retry|deliver`` and ``watchkeeper routes test``.

Mounted by the main CLI (its groups join the root). Like every local command, these read the
settings ``serve`` reads (``--config`` / ``WATCHKEEPER_*``) and work on its database.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from watchkeeper.cli.common import cut, dumps, make_table, out, service, stamp, unix_user

app = typer.Typer(no_args_is_help=True, add_completion=False)
outbox_app = typer.Typer(no_args_is_help=True, help="Messages to integrations: see what waits or died; send again.")
routes_app = typer.Typer(no_args_is_help=True, help="Routing of incidents to integration targets.")
app.add_typer(outbox_app, name="outbox")
app.add_typer(routes_app, name="routes")

STATUSES = ("pending", "delivered", "dead")


@outbox_app.command("list")
def outbox_list(
    status: Annotated[str | None, typer.Option(help="pending, delivered or dead")] = None,
    target: Annotated[str | None, typer.Option(help="only this target")] = None,
    incident: Annotated[int | None, typer.Option(help="only this incident", min=1, max=2**31 - 1)] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Outbox messages, newest first: target, event, state, attempts, last error."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"--status is one of {', '.join(STATUSES)}, not {status!r}")
    from watchkeeper.integrations.runtime import Integrations

    with service() as wk:
        integrations = Integrations(wk, notifiers={})
        try:
            rows = integrations.messages(status=status, target=target, incident_id=incident, limit=limit)
        finally:
            integrations.stop()
    if as_json:
        for row in rows:
            print(dumps(row))
        return
    table = make_table("id", "incident", "target", "event", "status", "attempts", "created", "error")
    for row in rows:
        table.add_row(str(row["id"]), str(row["incident_id"]), row["target"], row["event"], row["status"],
                      str(row["attempts"]), stamp(row["created_at"]), cut(row["last_error"] or "", 80))
    if not rows:
        table.caption = "no messages" + (f" with status {status}" if status else "")
    out.print(table)


@outbox_app.command("retry")
def outbox_retry(message_id: Annotated[int, typer.Argument(min=1, max=2**31 - 1, help="the message's id")]) -> None:
    """Send a dead (or waiting) message again now, with a fresh count of attempts (audited);
    ``serve`` delivers it within a moment."""
    from watchkeeper.integrations.runtime import Integrations

    with service() as wk:
        integrations = Integrations(wk, notifiers={})
        try:
            found = integrations.retry(message_id, f"cli:{unix_user()}")
        finally:
            integrations.stop()
    out.print(f"message {found['id']} ({found['target']}, incident {found['incident_id']}) is due again")


@routes_app.command("test")
def routes_test(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="Settings YAML with integrations: and routes:")],
    incident: Annotated[Path | None, typer.Option(dir_okay=False, help="a sample incident (YAML or JSON: "
                                                  "service(s), severity, labels)")] = None,
    service_name: Annotated[list[str] | None, typer.Option("--service", help="the incident's service(s)")] = None,
    severity: Annotated[str, typer.Option(help="critical, error, warning or info")] = "warning",
    label: Annotated[list[str] | None, typer.Option(help="an alert label, name=value (repeatable)")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Where a sample incident would go: each route that matches and why, then which targets get
    each kind of change. Exit 2 for an invalid file (naming file:line) or sample."""
    import yaml

    from watchkeeper.errors import InputError
    from watchkeeper.integrations.base import EventKind
    from watchkeeper.integrations.routing import Facts, Router
    from watchkeeper.settings import load_settings

    settings = load_settings(os.environ, file)
    router = Router(settings.routes, settings.integrations.accepts())
    if incident is not None:
        try:
            doc = yaml.safe_load(incident.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise InputError(f"cannot read the sample incident {incident}: {exc}") from None
        if not isinstance(doc, dict):
            raise InputError(f"{incident}: a sample incident is a mapping (service, severity, labels)")
    else:
        labels: dict[str, str] = {}
        for text in label or []:
            name, sep, value = text.partition("=")
            if not sep or not name:
                raise InputError(f"--label {text!r}: expected name=value")
            labels[name] = value
        doc = {"services": service_name or [], "severity": severity, "labels": labels}
    facts = Facts.sample(doc)
    hits = router.explain(facts)
    by_event = {event.value: router.targets(facts, event) for event in EventKind}
    if as_json:
        print(dumps({"routes": [{"index": h.index, "targets": list(h.targets), "why": h.reason} for h in hits],
                     "events": by_event}))
        return
    if not settings.routes:
        out.print(f"{file}: no routes: nothing is sent anywhere")
        return
    if not hits:
        out.print("no route matches: this incident is sent nowhere")
        return
    table = make_table("route", "targets", "why")
    for hit in hits:
        table.add_row(f"#{hit.index + 1}", ", ".join(hit.targets) or "-", hit.reason)
    out.print(table)
    events = make_table("change", "sent to")
    for event, targets in by_event.items():
        events.add_row(event, ", ".join(targets) or "-")
    out.print(events)


