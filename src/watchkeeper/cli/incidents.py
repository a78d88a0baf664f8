"""``watchkeeper incidents``: list, inspect and work incidents (locally or through --url)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from watchkeeper.cli.common import (
    actor,
    backend,
    dumps,
    make_table,
    out,
    service,
    stamp,
)
from watchkeeper.errors import WatchkeeperError
from watchkeeper.lifecycle import Action
from watchkeeper.model import IncidentStatus
from watchkeeper.service import Watchkeeper
from watchkeeper.views import IncidentDetail, IncidentSummary

app = typer.Typer(no_args_is_help=True, help="List, inspect and work incidents.")


@app.command("list")
def incidents_list(
    status: Annotated[IncidentStatus | None, typer.Option(help="Only incidents in this state")] = None,
    service_name: Annotated[str | None, typer.Option("--service", help="Only this service")] = None,
    since: Annotated[datetime | None, typer.Option(help="Opened at or after (ISO 8601)")] = None,
    limit: int = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines")] = False,
) -> None:
    """List incidents, newest first."""
    with backend() as wk:
        found: list[IncidentSummary] = wk.incidents(status=status.value if status else None, service=service_name,
                                                    since=since, limit=limit)
    if as_json:
        for incident in found:
            print(dumps(incident.as_dict()))
        return
    table = make_table("id", "status", "sev", "services", "alerts", "opened", "title")
    for i in found:
        table.add_row(str(i.id), i.status.value, i.severity.value, ",".join(i.services),
                      f"{i.firing_alerts}/{i.alert_count}", stamp(i.opened_at), i.title)
    out.print(table)


@app.command("show")
def incidents_show(
    incident_id: int, as_json: Annotated[bool, typer.Option("--json")] = False
) -> None:
    """One incident with its alerts (and why each joined) and its timeline."""
    with backend() as wk:
        found: IncidentDetail = wk.incident(incident_id)
    if as_json:
        print(dumps(found.as_dict()))
        return
    _print_incident(found)


def _print_incident(i: IncidentDetail) -> None:
    out.print(f"[bold]Incident {i.id}[/bold] [{i.status.value}] {i.severity.value} — {i.title}")
    out.print(f"services: {', '.join(i.services)}   opened {stamp(i.opened_at)}   "
              f"acknowledged {stamp(i.acknowledged_at)}   resolved {stamp(i.resolved_at)}   "
              f"assignee {i.assignee or '-'}")
    if i.started_at or i.first_acknowledged_at:
        out.print(f"started at the source {stamp(i.started_at)}   first acknowledged "
                  f"{stamp(i.first_acknowledged_at)}   first mitigated {stamp(i.first_mitigated_at)}")
    alerts = make_table("fingerprint", "alert", "status", "count", "joined because", title="alerts")
    for a in i.alerts:
        alerts.add_row(a.fingerprint, a.name or a.summary, a.status.value, str(a.count),
                       f"{a.reason}: {a.reason_detail}")
    out.print(alerts)
    if i.causes:
        causes = make_table("rank", "component", "kind", "confidence", "model", title="ranked causes")
        for n, c in enumerate(i.causes, start=1):
            causes.add_row(str(n), c.component, c.kind, f"{c.confidence:.2f}", c.model)
        out.print(causes)
    if i.decisions:
        decisions = make_table("id", "runbook", "verdict", "why", "confidence", "outcome", title="policy decisions")
        for d in i.decisions:
            confidence = "-" if d["confidence"] is None else f"{d['confidence']:.2f} (≥{d['threshold']:.2f})"
            decisions.add_row(str(d["id"]), d["runbook_id"], d["verdict"], d["reason"], confidence, d["outcome"] or "-")
        out.print(decisions)
    if i.actions:
        actions = make_table("id", "runbook", "trigger", "status", "verification", "finished", title="action runs")
        for r in i.actions:
            actions.add_row(str(r["id"]), r["runbook_id"], f"{r['trigger']} by {r['actor']}", r["status"],
                            r["verification"] or "-", stamp(r["finished_at"]))
        out.print(actions)
    timeline = make_table("at", "actor", "what", title="timeline")
    for t in i.timeline:
        detail = t.get("comment") or t.get("text") or t.get("detail") or ""
        timeline.add_row(stamp(t["at"]), t["actor"], f"{t['kind']} {detail}".strip())
    out.print(timeline)


def _lifecycle(action: Action, incident_id: int, text: str) -> None:
    with backend() as wk:
        found: IncidentDetail = wk.act(incident_id, action, actor(), text)
    out.print(f"incident {incident_id}: {found.status.value}"
              + (f", assigned to {found.assignee}" if found.assignee else ""))


@app.command("ack")
def incidents_ack(incident_id: int, comment: str = "") -> None:
    """Acknowledge an incident."""
    _lifecycle(Action.ACKNOWLEDGE, incident_id, comment)


@app.command("mitigate")
def incidents_mitigate(incident_id: int, comment: str = "") -> None:
    """Mark an incident mitigated."""
    _lifecycle(Action.MITIGATE, incident_id, comment)


@app.command("resolve")
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
        found: IncidentDetail = wk.act(incident_id, Action.RESOLVE, actor(), comment, fixed_by=fixed_by,
                                       harmful=harmful or [], **extra)
    out.print(f"incident {incident_id}: {found.status.value}" + (f", caused by {cause.strip()}" if cause else ""))


@app.command("merge")
def incidents_merge(incident_id: int, into: Annotated[int, typer.Option(help="incident that absorbs it")]) -> None:
    """Merge an incident into another (they were one problem)."""
    with backend() as wk:
        found: IncidentDetail = wk.merge(incident_id, into, actor())
    out.print(f"incident {incident_id} merged into {into}: {len(found.alerts)} alerts")


@app.command("split")
def incidents_split(
    incident_id: int, fingerprint: Annotated[list[str], typer.Argument(help="alerts to split off")]
) -> None:
    """Split alerts off an incident into a new one (they were unrelated)."""
    with backend() as wk:
        found: IncidentDetail = wk.split(incident_id, list(fingerprint), actor())
    out.print(f"new incident {found.id} with {len(found.alerts)} alerts split from {incident_id}")


@app.command("move")
def incidents_move(fingerprint: str, to: Annotated[int, typer.Option("--to", help="incident it belongs to")]) -> None:
    """Move one alert to the incident it belongs to."""
    with backend() as wk:
        wk.move_alert(fingerprint, to, actor())
    out.print(f"alert {fingerprint} moved to incident {to}")


@app.command("rank")
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


@app.command("reopen")
def incidents_reopen(incident_id: int, comment: str = "") -> None:
    """Reopen a resolved or mitigated incident."""
    _lifecycle(Action.REOPEN, incident_id, comment)


@app.command("assign")
def incidents_assign(incident_id: int, assignee: str) -> None:
    """Assign an incident to someone."""
    _lifecycle(Action.ASSIGN, incident_id, assignee)


@app.command("comment")
def incidents_comment(incident_id: int, text: str) -> None:
    """Add a comment to an incident's timeline."""
    _lifecycle(Action.COMMENT, incident_id, text)
