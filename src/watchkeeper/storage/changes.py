"""SQL for change events, the true causes of incidents, and what ranking needs from incidents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from watchkeeper.model import Incident
from watchkeeper.storage.ingest import incident_from_row
from watchkeeper.storage.tables import alerts, changes, incident_alerts, incident_causes, incident_truth, incidents


def add_changes(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """Insert change rows (the columns of ``changes`` but ``id``); return their ids in order."""
    ids = []
    for row in rows:
        key = conn.execute(insert(changes).values(**row)).inserted_primary_key
        ids.append(int(key[0]) if key else 0)
    return ids


def list_changes(
    conn: Connection, *, services: Sequence[str] | None = None, since: datetime | None = None,
    until: datetime | None = None, limit: int = 1000,
) -> list[dict[str, Any]]:
    """Changes oldest first, filtered by service(s) and time (``since`` ≤ at ≤ ``until``)."""
    query = select(changes)
    if services is not None:
        query = query.where(changes.c.service.in_(list(services)))
    if since is not None:
        query = query.where(changes.c.at >= since)
    if until is not None:
        query = query.where(changes.c.at <= until)
    rows = conn.execute(query.order_by(changes.c.at, changes.c.id).limit(limit))
    return [dict(r._mapping) for r in rows]


def first_alert_at(conn: Connection, incident_id: int) -> datetime | None:
    """When the incident's earliest alert started (its first event's ``starts_at``)."""
    query = (select(func.min(alerts.c.first_seen))
             .join(incident_alerts, incident_alerts.c.fingerprint == alerts.c.fingerprint)
             .where(incident_alerts.c.incident_id == incident_id))
    value = conn.execute(query).scalar()
    return value if isinstance(value, datetime) else None


def set_truth(conn: Connection, incident_id: int, component: str, actor: str, at: datetime) -> None:
    values = {"component": component, "recorded_by": actor, "recorded_at": at}
    done = conn.execute(update(incident_truth).where(incident_truth.c.incident_id == incident_id).values(**values))
    if done.rowcount == 0:
        conn.execute(insert(incident_truth).values(incident_id=incident_id, **values))


def truth_of(conn: Connection, incident_id: int) -> str | None:
    value = conn.execute(select(incident_truth.c.component)
                         .where(incident_truth.c.incident_id == incident_id)).scalar()
    return str(value) if value is not None else None


def labelled_rankings(conn: Connection, model: str) -> list[dict[str, Any]]:
    """Per incident with a recorded true cause and a stored ranking by ``model``: the truth, the
    top component, and the first and second scores (0 when there is no second cause)."""
    query = (select(incident_truth.c.incident_id, incident_truth.c.component.label("truth"),
                    incident_causes.c.rank, incident_causes.c.component, incident_causes.c.score)
             .join(incident_causes, incident_causes.c.incident_id == incident_truth.c.incident_id)
             .where(incident_causes.c.model == model, incident_causes.c.rank <= 2)
             .order_by(incident_truth.c.incident_id, incident_causes.c.rank))
    out: dict[int, dict[str, Any]] = {}
    for r in conn.execute(query):
        doc = out.setdefault(r.incident_id, {"incident_id": r.incident_id, "truth": r.truth, "top": None,
                                             "top_score": 0.0, "second_score": 0.0})
        if r.rank == 1:
            doc["top"], doc["top_score"] = r.component, float(r.score)
        else:
            doc["second_score"] = float(r.score)
    return [d for d in out.values() if d["top"] is not None]


def active_incidents(conn: Connection, limit: int = 500) -> list[Incident]:
    """Incidents not yet resolved, newest first."""
    query = (select(incidents).where(incidents.c.status != "resolved")
             .order_by(incidents.c.id.desc()).limit(limit))
    return [incident_from_row(row) for row in conn.execute(query)]
