"""Changes made in ServiceNow or Jira, applied to our incidents (the storage side of ``itsm``).

:func:`apply` takes a batch of :class:`~watchkeeper.integrations.itsm.Inbound` changes and applies
them in one transaction — each key once, ever (stored with its effect), audited as the person who
made the change there (``servicenow:beth.anglin``) with ``via``, so no integration sends it back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import Connection

from watchkeeper import lifecycle
from watchkeeper.errors import Conflict, InputError, NotFound
from watchkeeper.integrations.itsm import Field, Inbound, Outcome, Result, plan
from watchkeeper.lifecycle import Action
from watchkeeper.model import Change, IncidentStatus
from watchkeeper.storage import Database, audit, ingest, queries
from watchkeeper.storage import itsm as store

#: Whether we created ticket ``external_id`` for incident ``claimed`` (the outbox's stored ref).
Vouch = Callable[[Connection, int, str], bool]


def apply(db: Database, clock: Callable[[], datetime], changes: Sequence[Inbound],
          vouch: Vouch | None = None) -> list[Result]:
    """Apply inbound changes in one write transaction; each key at most once, ever.

    A ticket is linked to an incident when we created it; a ticket seen for the first time here
    is linked to the incident it claims only if ``vouch`` confirms we created it for that one
    (anyone can type a correlation id or a label onto a ticket)."""
    now = clock()
    results: list[Result] = []
    with db.write() as conn:
        for change in changes:
            if store.seen(conn, change.system, change.key):
                results.append(Result(change, Outcome.DUPLICATE))
                continue
            link = store.link_by_external(conn, change.system, change.external_id)
            if link is None and change.claimed is not None and vouch is not None \
                    and vouch(conn, change.claimed, change.external_id):
                link = store.Link(change.system, change.claimed, change.external_id, change.external_id)
                store.add_link(conn, link, now)
            if link is None:
                result = Result(change, Outcome.UNLINKED, None, f"no incident is linked to {change.external_id}")
            else:
                result = _apply_one(conn, change, link.incident_id, now)
            store.remember(conn, change.system, change.key, now, result.incident_id, result.outcome.value)
            results.append(result)
    return results


def _apply_one(conn: Connection, change: Inbound, incident_id: int, now: datetime) -> Result:
    try:
        incident = queries.get_incident(conn, incident_id)
    except NotFound:
        return Result(change, Outcome.UNLINKED, None, f"incident {incident_id} no longer exists")
    if change.field is Field.STATE:
        steps = [(a, "") for a in plan(incident.status, IncidentStatus(change.value))]
    elif change.field is Field.ASSIGNEE:
        steps = [(Action.ASSIGN, change.value)]
    else:
        steps = [(Action.COMMENT, change.value)]
    actor = f"{change.system}:{change.actor}"
    made: list[Change] = []
    try:
        for action, text in steps:
            found = lifecycle.apply(incident, action, actor, now, text)
            if found is not None:
                payload = {**found.payload, "via": change.system, "external_id": change.external_id}
                if change.detail:
                    payload["detail"] = change.detail
                made.append(Change(found.kind, found.subject, found.at, payload))
    except (Conflict, InputError) as exc:
        return Result(change, Outcome.REFUSED, incident_id, str(exc))
    if not made:
        return Result(change, Outcome.NO_CHANGE, incident_id)
    if any(c.kind != "incident.commented" for c in made):
        ingest.save_incident(conn, incident)
    audit.append(conn, actor, made)
    return Result(change, Outcome.APPLIED, incident_id)
