"""Load the slice of pipeline state a batch of events touches, and write back what changed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ARRAY, BindParameter, Connection, Integer, Text, any_, bindparam, func, insert, select, update

from watchkeeper.model import Alert, Event, HoldReason, Incident, IncidentStatus, Severity, Status
from watchkeeper.pipeline import State
from watchkeeper.storage.db import json_text
from watchkeeper.storage.tables import (
    alerts,
    incident_alerts,
    incident_keys,
    incident_services,
    incidents,
    inhibitors,
    silences,
)
from watchkeeper.storage.types import pg_stamp, sqlite_stamp
from watchkeeper.suppress import Silence, parse_matcher

CHUNK = 500
#: Longest correlation and inhibition keys the index columns hold. A longer key (the text strategy
#: on a very long summary, a label group on a very long label value) is not written: the alert is
#: stored and correlated as usual in this process, but the incident cannot be found under that key
#: after a restart. Writing it would make the database refuse the whole commit.
KEY_LIMIT: int = incident_keys.c.key.type.length  # type: ignore[attr-defined]
INHIBIT_KEY_LIMIT: int = inhibitors.c.key.type.length  # type: ignore[attr-defined]


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
# PostgreSQL: one array parameter (``= ANY(...)``) instead of an IN list of up to CHUNK
# parameters: one short statement, parsed once by the driver and prepared by the server.
_TEXTS: BindParameter[Any] = bindparam("values", type_=ARRAY(Text))
_INTS: BindParameter[Any] = bindparam("values", type_=ARRAY(Integer))


def _reads(pg: bool) -> dict[str, Any]:
    """``load_state``'s reads, each taking the list parameter ``values``."""
    def among(column: Any, ints: bool = False) -> Any:
        return column == any_(_INTS if ints else _TEXTS) if pg else column.in_(_VALUES)

    return {
        "alerts": select(alerts).where(among(alerts.c.fingerprint)),
        "inhibitors": select(inhibitors).where(among(inhibitors.c.key)),
        "active_by_key": (
            select(incident_keys.c.key, incidents.c.id)
            .join(incidents, incidents.c.id == incident_keys.c.incident_id)
            .where(among(incident_keys.c.key))
            .where(incidents.c.status != IncidentStatus.RESOLVED.value)
            .order_by(incidents.c.last_activity_at)
        ),
        "incidents": select(incidents).where(among(incidents.c.id, ints=True)),
        "services_of": select(incident_services).where(among(incident_services.c.incident_id, ints=True)),
        "keys_of": select(incident_keys).where(among(incident_keys.c.incident_id, ints=True)),
    }


_READS = {False: _reads(False), True: _reads(True)}
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
    reads = _READS[conn.dialect.name == "postgresql"]

    def read(name: str, values: Sequence[Any]) -> Any:
        return conn.execute(reads[name], {"values": list(values)})

    fresh = state is None or loaded is None
    state = State() if state is None else state
    loaded = Loaded() if loaded is None else loaded
    fingerprints = sorted({e.fingerprint for e in batch} - loaded.known_fingerprints)
    loaded.known_fingerprints.update(fingerprints)
    keys = keys - loaded.known_keys
    loaded.known_keys.update(keys)
    for part in _chunks(fingerprints):
        for row in read("alerts", part):
            state.alerts[row.fingerprint] = alert_from_row(row)
            loaded.alerts.add(row.fingerprint)
    incident_ids = {state.alerts[f].incident_id for f in fingerprints if f in state.alerts} - {None}
    inhibit_keys = sorted(k for k in keys if k.startswith("inhibit:"))
    for part in _chunks(inhibit_keys):
        for row in read("inhibitors", part):
            state.inhibiting.setdefault(row.key, set()).add(row.fingerprint)
    for part in _chunks(sorted(k for k in keys if not k.startswith("inhibit:"))):
        for row in read("active_by_key", part):
            state.active_by_key[row.key] = row.id  # the most recently active wins
            incident_ids.add(row.id)
    for part in _chunks(sorted(i for i in incident_ids if i is not None and i not in state.incidents)):
        for row in read("incidents", part):
            state.incidents[row.id] = incident_from_row(row)
        for row in read("services_of", part):
            loaded.incident_services.add((row.incident_id, row.service))
        for row in read("keys_of", part):
            loaded.incident_keys.add((row.incident_id, row.key))
            state.incidents[row.incident_id].keys.append(row.key)
    now = max((e.received_at for e in batch), default=None)
    if now is not None:
        state.silences = active_silences(conn, now)
    if fresh:
        loaded.next_id = next_incident_id(conn)
    return state, loaded


def insert_events(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Write events rows made by ``event_rows`` (``persist`` then gets ``rows=[]``)."""
    _Driver.of(conn).insert_events(conn, rows)


def forget(state: State, loaded: Loaded, keep: int) -> int:
    """Bound a kept State (committed: nothing in it is unwritten) to ``keep`` alerts: the least
    recently seen are forgotten, except those an incident's footprint names (a split reads them
    from the state); ``load_state`` reads a forgotten alert back when a batch names it. The
    number forgotten.

    >>> from datetime import UTC, datetime, timedelta
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> state, loaded = State(), Loaded()
    >>> for k in range(4):
    ...     fp = f"f{k}"
    ...     state.alerts[fp] = Alert(fp, "s", "X", "db", "", Severity.WARNING, Status.FIRING, {}, "x", t,
    ...                              t + timedelta(seconds=k))
    ...     loaded.alerts.add(fp)
    ...     loaded.known_fingerprints.add(fp)
    >>> forget(state, loaded, 2), sorted(state.alerts), sorted(loaded.known_fingerprints)
    (2, ['f2', 'f3'], ['f2', 'f3'])
    """
    if len(state.alerts) <= keep:
        return 0
    named = {fp for footprint in state.footprints.values() for fp in (footprint.origin, *footprint.members)}
    oldest = sorted((a for fp, a in state.alerts.items() if fp not in named), key=lambda a: a.last_seen)
    gone = [a.fingerprint for a in oldest[: len(state.alerts) - keep]]
    for fingerprint in gone:
        del state.alerts[fingerprint]
    loaded.alerts.difference_update(gone)
    # what was looked up and not found (a resolve of an unseen alert; a key no active incident
    # holds) is looked up again too: the database has nothing the state lacks
    loaded.known_fingerprints.intersection_update(state.alerts)
    loaded.known_keys = {k for k in loaded.known_keys if k in state.active_by_key or k.startswith("inhibit:")}
    return len(gone)


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
    stamp = driver.stamp
    rows = driver.event_rows(batch) if rows is None else rows
    if rows:
        driver.insert_events(conn, rows)
    new_incidents = [state.incidents[i] for i in sorted(state.new_incidents)]
    if new_incidents:
        driver.insert(conn, _INCIDENT_INSERT, [(i.id, *driver.incident_values(i)) for i in new_incidents])
    changed = [state.incidents[i] for i in sorted(state.changed_incidents - state.new_incidents)]
    if changed:
        driver.update(conn, _INCIDENT_UPDATE, [(*driver.incident_values(i), i.id) for i in changed])
    touched = [state.incidents[i] for i in sorted(state.touched_incidents - state.changed_incidents)]
    if touched:
        driver.update(conn, _INCIDENT_TOUCH, [(stamp(i.last_activity_at), i.id) for i in touched])
    pairs = {
        (i, s) for i in state.changed_incidents for s in state.incidents[i].services
    } - loaded.incident_services
    if pairs:
        conn.execute(insert(incident_services), [{"incident_id": i, "service": s} for i, s in sorted(pairs)])
        loaded.incident_services.update(pairs)
    key_pairs = {
        (i, k) for i in state.changed_incidents for k in state.incidents[i].keys if len(k) <= KEY_LIMIT
    } - loaded.incident_keys
    if key_pairs:
        conn.execute(insert(incident_keys), [{"incident_id": i, "key": k} for i, k in sorted(key_pairs)])
        loaded.incident_keys.update(key_pairs)
    fresh = [state.alerts[f] for f in sorted(state.changed_alerts - loaded.alerts)]
    # before ``loaded.alerts`` learns the fresh ones: an alert just inserted is not updated again
    known = [state.alerts[f] for f in sorted(state.changed_alerts & loaded.alerts)]
    if fresh:
        driver.insert(conn, _ALERT_INSERT, [(a.fingerprint, *driver.alert_values(a)) for a in fresh])
        loaded.alerts.update(a.fingerprint for a in fresh)
    counted = [state.alerts[f] for f in sorted(state.counted_alerts - state.changed_alerts)]
    if counted:  # plain repeats: only count and last_seen changed
        driver.update(conn, _ALERT_COUNT, [(a.count, stamp(a.last_seen), a.fingerprint) for a in counted])
    if known:
        driver.update(conn, _ALERT_UPDATE, [(*driver.alert_values(a), a.fingerprint) for a in known])
    inhibit_added = sorted((k, f) for k, f in state.inhibit_added if len(k) <= INHIBIT_KEY_LIMIT)
    if inhibit_added:
        conn.execute(insert(inhibitors), [{"key": k, "fingerprint": f} for k, f in inhibit_added])
    for key, fingerprint in sorted(state.inhibit_removed):
        conn.execute(inhibitors.delete().where(inhibitors.c.key == key, inhibitors.c.fingerprint == fingerprint))
    for incident_id, fingerprint in state.departures:  # split off into another incident
        conn.execute(incident_alerts.delete().where(incident_alerts.c.incident_id == incident_id,
                                                    incident_alerts.c.fingerprint == fingerprint))
    if state.memberships:
        driver.insert(conn, _MEMBERSHIP_INSERT, [
            (m.incident_id, m.fingerprint, stamp(m.joined_at), m.reason, m.detail) for m in state.memberships])


@dataclass(frozen=True, slots=True)
class _Columns:
    """Columns of one table written by ``_Driver``: names in row order with their PostgreSQL
    types (its arrays are cast to them), and the key an update matches on (last in
    each update row). Every name is a constant of this module."""

    table: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, str] = ("", "")

    def sql_insert(self, marks: str) -> str:
        names = ", ".join(name for name, _ in self.columns)
        return f"INSERT INTO {self.table} ({names}) VALUES {marks}"  # noqa: S608 - constant identifiers

    def sql_update(self) -> str:
        """SQLite: one row per execution."""
        sets = ", ".join(f"{name} = ?" for name, _ in self.columns)
        return f"UPDATE {self.table} SET {sets} WHERE {self.key[0]} = ?"  # noqa: S608 - constant identifiers

    def pg_insert(self) -> str:
        """PostgreSQL: every row in one statement of one array per column (``unnest``, binary): the
        statement's text is the same whatever the number of rows, so the driver parses it once
        and the server prepares it, where a ``VALUES`` list of thousands of parameters was parsed
        anew by both at every batch.

        >>> _Columns("t", (("a", "text"), ("b", "jsonb"))).pg_insert()
        'INSERT INTO t (a, b) SELECT * FROM unnest(%b::text[], %b::jsonb[])'
        """
        names = ", ".join(name for name, _ in self.columns)
        arrays = ", ".join(f"%b::{kind}[]" for _, kind in self.columns)
        return f"INSERT INTO {self.table} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608 - constants

    def pg_update(self) -> str:
        """PostgreSQL: every row in one statement, arrays as in ``pg_insert``, the key last.

        >>> _Columns("t", (("a", "text"),), ("k", "integer")).pg_update()
        'UPDATE t SET a = v.a FROM unnest(%b::text[], %b::integer[]) AS v(a, k) WHERE t.k = v.k'
        """
        sets = ", ".join(f"{name} = v.{name}" for name, _ in self.columns)
        names = ", ".join(name for name, _ in (*self.columns, self.key))
        arrays = ", ".join(f"%b::{kind}[]" for _, kind in (*self.columns, self.key))
        key = self.key[0]
        return (f"UPDATE {self.table} SET {sets} FROM unnest({arrays}) AS v({names}) "  # noqa: S608 - constants
                f"WHERE {self.table}.{key} = v.{key}")


_ALERT_VALUES = (
    ("source", "text"), ("name", "text"), ("service", "text"), ("resource", "text"), ("severity", "text"),
    ("status", "text"), ("labels", "jsonb"), ("summary", "text"), ("first_seen", "timestamptz"),
    ("last_seen", "timestamptz"), ("count", "integer"), ("resolved_at", "timestamptz"), ("incident_id", "integer"),
    ("join_reason", "text"), ("held", "text"), ("changes", "jsonb"),
)  # the order of ``_Driver.alert_values`` (``_alert_values``'s keys)
_INCIDENT_VALUES = (
    ("title", "text"), ("status", "text"), ("severity", "text"), ("services", "jsonb"),
    ("opened_at", "timestamptz"), ("last_activity_at", "timestamptz"), ("acknowledged_at", "timestamptz"),
    ("mitigated_at", "timestamptz"), ("resolved_at", "timestamptz"), ("firing_count", "integer"),
    ("alert_count", "integer"), ("assignee", "text"), ("started_at", "timestamptz"),
    ("first_acknowledged_at", "timestamptz"), ("first_mitigated_at", "timestamptz"),
)  # the order of ``_Driver.incident_values`` (``_incident_values``'s keys)
_ALERT_INSERT = _Columns("alerts", (("fingerprint", "text"), *_ALERT_VALUES))
_ALERT_UPDATE = _Columns("alerts", _ALERT_VALUES, ("fingerprint", "text"))
_ALERT_COUNT = _Columns("alerts", (("count", "integer"), ("last_seen", "timestamptz")), ("fingerprint", "text"))
_INCIDENT_INSERT = _Columns("incidents", (("id", "integer"), *_INCIDENT_VALUES))
_INCIDENT_UPDATE = _Columns("incidents", _INCIDENT_VALUES, ("id", "integer"))
_INCIDENT_TOUCH = _Columns("incidents", (("last_activity_at", "timestamptz"),), ("id", "integer"))
_MEMBERSHIP_INSERT = _Columns("incident_alerts", (
    ("incident_id", "integer"), ("fingerprint", "text"), ("joined_at", "timestamptz"), ("reason", "text"),
    ("detail", "text")))
_INSERT_EVENT = (
    "INSERT INTO events (received_at, source, kind, fingerprint, status, severity, service, summary, starts_at, "
    "ends_at, labels, raw) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_COPY_EVENTS = (
    "COPY events (received_at, source, kind, fingerprint, status, severity, service, summary, starts_at, "
    "ends_at, labels, raw) FROM STDIN"
)


def _arrays(rows: Sequence[tuple[Any, ...]], width: int) -> tuple[list[Any], ...]:
    """Rows as one list per column (``unnest``'s arrays).

    >>> _arrays([(1, "a"), (2, None)], 2)
    ([1, 2], ['a', None])
    """
    if not rows:
        return tuple([] for _ in range(width))
    return tuple(list(column) for column in zip(*rows, strict=True))


@dataclass(frozen=True, slots=True)
class _Driver:
    """Rows handed to the DBAPI driver as tuples of what it stores: times as ``UTCDateTime``
    stores them, JSON as text. SQLAlchemy Core's per-row work (a parameter dict, compiled
    parameters, a type processor per value) cost more than SQLite's own insert, so the
    high-volume writes skip it. SQLite takes them with ``executemany``; PostgreSQL as one
    statement per table (``unnest`` of one array per column; ``COPY`` for events), not a round trip
    per row."""

    sqlite: bool
    stamp: Callable[[datetime], Any]

    @classmethod
    def of(cls, conn: Connection) -> _Driver:
        return cls.for_dialect(conn.dialect.name)

    @classmethod
    def for_dialect(cls, name: str) -> _Driver:
        sqlite = name == "sqlite"
        return cls(sqlite, sqlite_stamp if sqlite else pg_stamp)

    def insert(self, conn: Connection, columns: _Columns, rows: Sequence[tuple[Any, ...]]) -> None:
        if self.sqlite:
            conn.exec_driver_sql(columns.sql_insert("(" + ", ".join("?" for _ in columns.columns) + ")"), rows)
            return
        conn.exec_driver_sql(columns.pg_insert(), _arrays(rows, len(columns.columns)))

    def update(self, conn: Connection, columns: _Columns, rows: Sequence[tuple[Any, ...]]) -> None:
        """``rows``: the new values in column order, then the key."""
        if self.sqlite:
            conn.exec_driver_sql(columns.sql_update(), rows)
            return
        conn.exec_driver_sql(columns.pg_update(), _arrays(rows, len(columns.columns) + 1))

    def event_rows(self, batch: Sequence[Event]) -> list[tuple[Any, ...]]:
        """The events table's rows for ``batch`` (they depend on nothing else: the server makes
        them before it takes the ingest lock)."""
        stamp = self.stamp
        stamps: dict[datetime, Any] = {}  # the batch's receipt time, and repeated start times
        rows = []
        for e in batch:
            at = stamps.get(e.received_at)
            if at is None:
                at = stamps[e.received_at] = stamp(e.received_at)
            starts = stamps.get(e.starts_at)
            if starts is None:
                starts = stamps[e.starts_at] = stamp(e.starts_at)
            labels = e.labels if type(e.labels) is dict else dict(e.labels)
            rows.append((
                at, e.source, e.kind._value_, e.fingerprint, e.status._value_, e.severity._value_, e.service,
                e.summary, starts, None if e.ends_at is None else stamp(e.ends_at),
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
            a.source, a.name, a.service, a.resource, a.severity._value_, a.status._value_,
            json_text(a.labels if type(a.labels) is dict else dict(a.labels)), a.summary,
            stamp(a.first_seen), stamp(a.last_seen), a.count,
            None if a.resolved_at is None else stamp(a.resolved_at), a.incident_id, a.join_reason,
            None if a.held is None else a.held._value_,
            json_text([c.timestamp() for c in a.changes]) if a.changes else None,
        )

    def incident_values(self, i: Incident) -> tuple[Any, ...]:
        stamp = self.stamp
        return (
            i.title, i.status._value_, i.severity._value_, json_text(list(i.services)), stamp(i.opened_at),
            stamp(i.last_activity_at), None if i.acknowledged_at is None else stamp(i.acknowledged_at),
            None if i.mitigated_at is None else stamp(i.mitigated_at),
            None if i.resolved_at is None else stamp(i.resolved_at), i.firing_count, i.alert_count, i.assignee,
            None if i.started_at is None else stamp(i.started_at),
            None if i.first_acknowledged_at is None else stamp(i.first_acknowledged_at),
            None if i.first_mitigated_at is None else stamp(i.first_mitigated_at),
        )


def _alert_values(a: Alert) -> dict[str, Any]:
    return {
        "source": a.source, "name": a.name, "service": a.service, "resource": a.resource,
        "severity": a.severity.value, "status": a.status.value, "labels": dict(a.labels),
        "summary": a.summary, "first_seen": a.first_seen, "last_seen": a.last_seen,
        "count": a.count, "resolved_at": a.resolved_at, "incident_id": a.incident_id,
        "join_reason": a.join_reason, "held": None if a.held is None else a.held.value,
        "changes": [c.timestamp() for c in a.changes] if a.changes else None,
    }


def alert_from_row(row: Any) -> Alert:
    return Alert(
        fingerprint=row.fingerprint, source=row.source, name=row.name, service=row.service,
        resource=row.resource, severity=Severity(row.severity), status=Status(row.status),
        labels=row.labels, summary=row.summary, first_seen=row.first_seen,
        last_seen=row.last_seen, count=row.count, resolved_at=row.resolved_at,
        incident_id=row.incident_id, join_reason=row.join_reason,
        held=None if row.held is None else HoldReason(row.held),
        changes=[datetime.fromtimestamp(c, UTC) for c in row.changes or ()],
    )


def _incident_values(i: Incident) -> dict[str, Any]:
    return {
        "title": i.title, "status": i.status.value, "severity": i.severity.value,
        "services": list(i.services), "opened_at": i.opened_at,
        "last_activity_at": i.last_activity_at, "acknowledged_at": i.acknowledged_at,
        "mitigated_at": i.mitigated_at, "resolved_at": i.resolved_at,
        "firing_count": i.firing_count, "alert_count": i.alert_count, "assignee": i.assignee,
        "started_at": i.started_at, "first_acknowledged_at": i.first_acknowledged_at,
        "first_mitigated_at": i.first_mitigated_at,
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
        started_at=row.started_at, first_acknowledged_at=row.first_acknowledged_at,
        first_mitigated_at=row.first_mitigated_at,
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
            if key not in keys and len(key) <= KEY_LIMIT:
                conn.execute(insert(incident_keys).values(incident_id=incident.id, key=key))
