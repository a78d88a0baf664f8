"""Load the slice of pipeline state a batch of events touches, and write back what changed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, bindparam, func, insert, select, update

from watchkeeper.model import Alert, Event, Incident, IncidentStatus, Severity, Status
from watchkeeper.pipeline import State
from watchkeeper.storage.db import json_text
from watchkeeper.storage.tables import (
    alerts,
    incident_keys,
    incident_services,
    incidents,
    inhibitors,
    silences,
)
from watchkeeper.storage.types import pg_stamp, sqlite_stamp
from watchkeeper.suppress import Silence, parse_matcher

CHUNK = 500


@dataclass(slots=True)
class Loaded:
    """What was read, so that writing back knows insert from update."""

    alerts: set[str] = field(default_factory=set)
    incident_services: set[tuple[int, str]] = field(default_factory=set)
    incident_keys: set[tuple[int, str]] = field(default_factory=set)
    next_id: int = 1
    #: fingerprints and keys already looked up (present or not), so a kept State is topped up only
    known_fingerprints: set[str] = field(default_factory=set)
    known_keys: set[str] = field(default_factory=set)

    def new_incident_id(self) -> int:
        value = self.next_id
        self.next_id += 1
        return value


# Read statements built once: building a statement and its cache key costs more than running
# these small queries.
_VALUES: BindParameter[Any] = bindparam("values", expanding=True)
_ALERTS_IN = select(alerts).where(alerts.c.fingerprint.in_(_VALUES))
_INHIBITORS_IN = select(inhibitors).where(inhibitors.c.key.in_(_VALUES))
_ACTIVE_BY_KEY = (
    select(incident_keys.c.key, incidents.c.id)
    .join(incidents, incidents.c.id == incident_keys.c.incident_id)
    .where(incident_keys.c.key.in_(_VALUES))
    .where(incidents.c.status != IncidentStatus.RESOLVED.value)
    .order_by(incidents.c.last_activity_at)
)
_INCIDENTS_IN = select(incidents).where(incidents.c.id.in_(_VALUES))
_SERVICES_OF = select(incident_services).where(incident_services.c.incident_id.in_(_VALUES))
_KEYS_OF = select(incident_keys).where(incident_keys.c.incident_id.in_(_VALUES))
_SILENCES_AT = select(silences).where(silences.c.starts_at <= bindparam("at"), silences.c.ends_at > bindparam("at"))
_NEXT_INCIDENT_ID = select(func.coalesce(func.max(incidents.c.id), 0))


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i:i + CHUNK] for i in range(0, len(values), CHUNK)]


def load_state(
    conn: Connection, batch: Sequence[Event], keys: set[str], state: State | None = None,
    loaded: Loaded | None = None,
) -> tuple[State, Loaded]:
    """Alerts these events name, and the active incidents indexed under ``keys``. Given a State
    kept from earlier batches (valid: nothing else wrote since), only what it lacks is read."""
    fresh = state is None or loaded is None
    state = State() if state is None else state
    loaded = Loaded() if loaded is None else loaded
    fingerprints = sorted({e.fingerprint for e in batch} - loaded.known_fingerprints)
    loaded.known_fingerprints.update(fingerprints)
    keys = keys - loaded.known_keys
    loaded.known_keys.update(keys)
    for part in _chunks(fingerprints):
        for row in conn.execute(_ALERTS_IN, {"values": part}):
            state.alerts[row.fingerprint] = alert_from_row(row)
            loaded.alerts.add(row.fingerprint)
    incident_ids = {state.alerts[f].incident_id for f in fingerprints if f in state.alerts} - {None}
    inhibit_keys = sorted(k for k in keys if k.startswith("inhibit:"))
    for part in _chunks(inhibit_keys):
        for row in conn.execute(_INHIBITORS_IN, {"values": part}):
            state.inhibiting.setdefault(row.key, set()).add(row.fingerprint)
    for part in _chunks(sorted(k for k in keys if not k.startswith("inhibit:"))):
        for row in conn.execute(_ACTIVE_BY_KEY, {"values": part}):
            state.active_by_key[row.key] = row.id  # the most recently active wins
            incident_ids.add(row.id)
    for part in _chunks(sorted(i for i in incident_ids if i is not None and i not in state.incidents)):
        for row in conn.execute(_INCIDENTS_IN, {"values": part}):
            state.incidents[row.id] = incident_from_row(row)
        for row in conn.execute(_SERVICES_OF, {"values": part}):
            loaded.incident_services.add((row.incident_id, row.service))
        for row in conn.execute(_KEYS_OF, {"values": part}):
            loaded.incident_keys.add((row.incident_id, row.key))
            state.incidents[row.incident_id].keys.append(row.key)
    now = max((e.received_at for e in batch), default=None)
    if now is not None:
        state.silences = active_silences(conn, now)
    if fresh:
        loaded.next_id = next_incident_id(conn)
    return state, loaded


def event_rows(dialect: str, batch: Sequence[Event]) -> list[tuple[Any, ...]]:
    """The events table's rows for ``batch`` on ``dialect`` (``sqlite``, ``postgresql``), for
    ``persist``: they can be made before the write transaction starts."""
    return _Driver.for_dialect(dialect).event_rows(batch)


def persist(
    conn: Connection, batch: Sequence[Event], state: State, loaded: Loaded,
    rows: list[tuple[Any, ...]] | None = None,
) -> None:
    """Write the batch's events (``rows``: made by ``event_rows`` already) and every change the
    pipeline made, in the caller's transaction.

    The rows that grow with the traffic (events, alerts, memberships, touched incidents) go to
    the driver as plain tuples (:class:`_Driver`); the rarer ones through SQLAlchemy Core."""
    driver = _Driver.of(conn)
    rows = driver.event_rows(batch) if rows is None else rows
    if rows:
        driver.insert_events(conn, rows)
    new_incidents = [state.incidents[i] for i in sorted(state.new_incidents)]
    if new_incidents:
        conn.execute(insert(incidents), [incident_row(i) for i in new_incidents])
    changed = [state.incidents[i] for i in sorted(state.changed_incidents - state.new_incidents)]
    if changed:
        conn.execute(
            update(incidents).where(incidents.c.id == bindparam("b_id")),
            [{"b_id": i.id, **_incident_values(i)} for i in changed],
        )
    touched = [state.incidents[i] for i in sorted(state.touched_incidents - state.changed_incidents)]
    if touched:
        stamp = driver.stamp
        driver.executemany(conn, "UPDATE incidents SET last_activity_at = ? WHERE id = ?",
                           [(stamp(i.last_activity_at), i.id) for i in touched])
    pairs = {
        (i, s) for i in state.changed_incidents for s in state.incidents[i].services
    } - loaded.incident_services
    if pairs:
        conn.execute(insert(incident_services), [{"incident_id": i, "service": s} for i, s in sorted(pairs)])
        loaded.incident_services.update(pairs)
    key_pairs = {(i, k) for i in state.changed_incidents for k in state.incidents[i].keys} - loaded.incident_keys
    if key_pairs:
        conn.execute(insert(incident_keys), [{"incident_id": i, "key": k} for i, k in sorted(key_pairs)])
        loaded.incident_keys.update(key_pairs)
    fresh = [state.alerts[f] for f in sorted(state.changed_alerts - loaded.alerts)]
    if fresh:
        driver.executemany(conn, _INSERT_ALERT, [(a.fingerprint, *driver.alert_values(a)) for a in fresh])
        loaded.alerts.update(a.fingerprint for a in fresh)
    counted = [state.alerts[f] for f in sorted(state.counted_alerts - state.changed_alerts)]
    if counted:
        driver.count_alerts(conn, counted)
    known = [state.alerts[f] for f in sorted(state.changed_alerts & loaded.alerts)]
    if known:
        driver.executemany(conn, _UPDATE_ALERT, [(*driver.alert_values(a), a.fingerprint) for a in known])
    if state.inhibit_added:
        conn.execute(insert(inhibitors), [{"key": k, "fingerprint": f} for k, f in sorted(state.inhibit_added)])
    for key, fingerprint in sorted(state.inhibit_removed):
        conn.execute(inhibitors.delete().where(inhibitors.c.key == key, inhibitors.c.fingerprint == fingerprint))
    if state.memberships:
        stamp = driver.stamp
        driver.executemany(
            conn, "INSERT INTO incident_alerts (incident_id, fingerprint, joined_at, reason, detail) "
                  "VALUES (?, ?, ?, ?, ?)",
            [(m.incident_id, m.fingerprint, stamp(m.joined_at), m.reason, m.detail) for m in state.memberships],
        )


# The columns of ``_Driver.alert_values`` (``_alert_values``'s keys, in order) and of events.
_INSERT_ALERT = (
    "INSERT INTO alerts (fingerprint, source, name, service, resource, severity, status, labels, summary, "
    "first_seen, last_seen, count, resolved_at, incident_id, join_reason, held, changes) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_ALERT = (
    "UPDATE alerts SET source = ?, name = ?, service = ?, resource = ?, severity = ?, status = ?, labels = ?, "
    "summary = ?, first_seen = ?, last_seen = ?, count = ?, resolved_at = ?, incident_id = ?, join_reason = ?, "
    "held = ?, changes = ? WHERE fingerprint = ?"
)
_INSERT_EVENT = (
    "INSERT INTO events (received_at, source, kind, fingerprint, status, severity, service, summary, starts_at, "
    "ends_at, labels, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COPY_EVENTS = (
    "COPY events (received_at, source, kind, fingerprint, status, severity, service, summary, starts_at, "
    "ends_at, labels, raw) FROM STDIN"
)


@dataclass(frozen=True, slots=True)
class _Driver:
    """Rows handed to the DBAPI driver as tuples of what it stores: times as ``UTCDateTime``
    stores them, JSON as text. SQLAlchemy Core's per-row work (a parameter dict, compiled
    parameters, a type processor per value) cost more than SQLite's own insert, so the
    high-volume writes skip it; SQL is written with ``?`` and adapted to the driver's style."""

    sqlite: bool
    stamp: Callable[[datetime], Any]

    @classmethod
    def of(cls, conn: Connection) -> _Driver:
        return cls.for_dialect(conn.dialect.name)

    @classmethod
    def for_dialect(cls, name: str) -> _Driver:
        sqlite = name == "sqlite"
        return cls(sqlite, sqlite_stamp if sqlite else pg_stamp)

    def executemany(self, conn: Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
        conn.exec_driver_sql(sql if self.sqlite else sql.replace("?", "%s"), rows)

    def event_rows(self, batch: Sequence[Event]) -> list[tuple[Any, ...]]:
        """The events table's rows for ``batch`` (they depend on nothing else: the server makes
        them before it takes the ingest lock)."""
        stamp = self.stamp
        received: dict[datetime, Any] = {}
        rows = []
        for e in batch:
            at = received.get(e.received_at)
            if at is None:
                at = received[e.received_at] = stamp(e.received_at)
            labels = e.labels if type(e.labels) is dict else dict(e.labels)
            rows.append((
                at, e.source, e.kind.value, e.fingerprint, e.status.value, e.severity.value, e.service,
                e.summary, stamp(e.starts_at), None if e.ends_at is None else stamp(e.ends_at),
                json_text(labels), json_text(e.raw if type(e.raw) is dict else dict(e.raw)),
            ))
        return rows

    def insert_events(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if self.sqlite:
            conn.exec_driver_sql(_INSERT_EVENT, rows)
            return
        # PostgreSQL: COPY, on the transaction's own connection (about 3x executemany's rate).
        driver = conn.connection.driver_connection
        assert driver is not None
        with driver.cursor() as cursor, cursor.copy(_COPY_EVENTS) as copy:
            for row in rows:
                copy.write_row(row)

    def alert_values(self, a: Alert) -> tuple[Any, ...]:
        stamp = self.stamp
        return (
            a.source, a.name, a.service, a.resource, a.severity.value, a.status.value,
            json_text(a.labels if type(a.labels) is dict else dict(a.labels)), a.summary,
            stamp(a.first_seen), stamp(a.last_seen), a.count,
            None if a.resolved_at is None else stamp(a.resolved_at), a.incident_id, a.join_reason, a.held,
            json_text([c.timestamp() for c in a.changes]) if a.changes else None,
        )

    def count_alerts(self, conn: Connection, counted: Sequence[Alert]) -> None:
        """Plain repeats: only ``count`` and ``last_seen`` change."""
        stamp = self.stamp
        if self.sqlite:
            conn.exec_driver_sql("UPDATE alerts SET count = ?, last_seen = ? WHERE fingerprint = ?",
                                 [(a.count, stamp(a.last_seen), a.fingerprint) for a in counted])
            return
        # PostgreSQL: one statement over arrays instead of a round trip per row.
        conn.exec_driver_sql(
            "UPDATE alerts SET count = v.count, last_seen = v.last_seen FROM unnest("
            "%s::text[], %s::integer[], %s::timestamptz[]) AS v(fingerprint, count, last_seen) "
            "WHERE alerts.fingerprint = v.fingerprint",
            ([a.fingerprint for a in counted], [a.count for a in counted], [stamp(a.last_seen) for a in counted]),
        )


def _alert_values(a: Alert) -> dict[str, Any]:
    return {
        "source": a.source, "name": a.name, "service": a.service, "resource": a.resource,
        "severity": a.severity.value, "status": a.status.value, "labels": dict(a.labels),
        "summary": a.summary, "first_seen": a.first_seen, "last_seen": a.last_seen,
        "count": a.count, "resolved_at": a.resolved_at, "incident_id": a.incident_id,
        "join_reason": a.join_reason, "held": a.held,
        "changes": [c.timestamp() for c in a.changes] if a.changes else None,
    }


def alert_from_row(row: Any) -> Alert:
    return Alert(
        fingerprint=row.fingerprint, source=row.source, name=row.name, service=row.service,
        resource=row.resource, severity=Severity(row.severity), status=Status(row.status),
        labels=row.labels, summary=row.summary, first_seen=row.first_seen,
        last_seen=row.last_seen, count=row.count, resolved_at=row.resolved_at,
        incident_id=row.incident_id, join_reason=row.join_reason, held=row.held,
        changes=[datetime.fromtimestamp(c, UTC) for c in row.changes or ()],
    )


def _incident_values(i: Incident) -> dict[str, Any]:
    return {
        "title": i.title, "status": i.status.value, "severity": i.severity.value,
        "services": list(i.services), "opened_at": i.opened_at,
        "last_activity_at": i.last_activity_at, "acknowledged_at": i.acknowledged_at,
        "mitigated_at": i.mitigated_at, "resolved_at": i.resolved_at,
        "firing_count": i.firing_count, "alert_count": i.alert_count, "assignee": i.assignee,
    }


def incident_row(i: Incident) -> dict[str, Any]:
    return {"id": i.id, **_incident_values(i)}


def incident_from_row(row: Any) -> Incident:
    return Incident(
        id=row.id, title=row.title, status=IncidentStatus(row.status),
        severity=Severity(row.severity), services=list(row.services), opened_at=row.opened_at,
        last_activity_at=row.last_activity_at, firing_count=row.firing_count,
        alert_count=row.alert_count, acknowledged_at=row.acknowledged_at,
        mitigated_at=row.mitigated_at, resolved_at=row.resolved_at, assignee=row.assignee,
    )


def save_incident(conn: Connection, incident: Incident) -> None:
    conn.execute(
        update(incidents).where(incidents.c.id == incident.id).values(**_incident_values(incident))
    )


def active_silences(conn: Connection, at: datetime) -> list[Silence]:
    rows = conn.execute(_SILENCES_AT, {"at": at})
    return [silence_from_row(row) for row in rows]


def silence_from_row(row: Any) -> Silence:
    return Silence(row.id, tuple(parse_matcher(m) for m in row.matchers), row.starts_at, row.ends_at,
                   row.created_by, row.comment)


def save_alert(conn: Connection, alert: Alert) -> None:
    conn.execute(update(alerts).where(alerts.c.fingerprint == alert.fingerprint).values(**_alert_values(alert)))


def next_incident_id(conn: Connection) -> int:
    return int(conn.execute(_NEXT_INCIDENT_ID).scalar_one()) + 1


def insert_incident(conn: Connection, incident: Incident) -> None:
    conn.execute(insert(incidents).values(**incident_row(incident)))


def save_incidents(conn: Connection, changed: Sequence[Incident]) -> None:
    """Write incidents back, with any services and correlation keys they gained."""
    for incident in changed:
        save_incident(conn, incident)
        have = {r.service for r in conn.execute(
            select(incident_services.c.service).where(incident_services.c.incident_id == incident.id))}
        for service in incident.services:
            if service not in have:
                conn.execute(insert(incident_services).values(incident_id=incident.id, service=service))
        query = select(incident_keys.c.key).where(incident_keys.c.incident_id == incident.id)
        keys = {r.key for r in conn.execute(query)}
        for key in incident.keys:
            if key not in keys:
                conn.execute(insert(incident_keys).values(incident_id=incident.id, key=key))
