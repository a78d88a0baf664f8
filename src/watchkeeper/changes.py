"""Change events: deploys, rollbacks, configuration and feature-flag changes on a service.

A delivery pipeline posts them (``POST /api/v1/ingest/changes``); they are stored, audited
(``change.recorded``), shown on the incidents they may explain, and given to the root-cause ranker
as evidence: a change shortly before an anomaly makes its service a stronger suspect — unless it was
already rolled back before the onset (:func:`suspects`).

>>> from datetime import UTC
>>> t = datetime(2026, 1, 1, tzinfo=UTC)
>>> deploy = ServiceChange(1, "pay", ChangeKind.DEPLOY, "v2", t, "ci", None, "")
>>> rollback = ServiceChange(2, "pay", ChangeKind.ROLLBACK, "v1", t + timedelta(minutes=5), "ci", None, "")
>>> [c.description for c in suspects([deploy, rollback], t + timedelta(minutes=1))]
['deploy v2']
>>> suspects([deploy, rollback], t + timedelta(minutes=10))
[]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from watchkeeper.errors import InputError
from watchkeeper.model import Change, ChangeKind, Incident, utc
from watchkeeper.sources.limits import UtcTime
from watchkeeper.storage import Database, audit
from watchkeeper.storage import changes as store

if TYPE_CHECKING:  # the ranker (networkx, numpy) is imported when it ranks
    from watchkeeper.rca import Change as RcaChange

#: The largest batch one request may carry.
MAX_BATCH = 1000


class ChangeIn(BaseModel):
    """One change as posted: ``at`` defaults to when it is received."""

    model_config = ConfigDict(extra="forbid")

    service: str = Field(min_length=1, max_length=256)
    kind: ChangeKind = ChangeKind.DEPLOY
    version: str | None = Field(None, max_length=256)
    at: UtcTime | None = None
    who: str = Field("", max_length=256)
    link: str | None = Field(None, max_length=2048)
    description: str = Field("", max_length=10_000)


class ChangeBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    changes: list[ChangeIn] = Field(min_length=1, max_length=MAX_BATCH)


@dataclass(frozen=True, slots=True)
class ServiceChange:
    """A stored change."""

    id: int
    service: str
    kind: ChangeKind
    version: str | None
    at: datetime
    who: str
    link: str | None
    description: str

    @property
    def summary(self) -> str:
        """What the ranker's evidence says: the description, or the kind and version."""
        return self.description or f"{self.kind.value} {self.version or ''}".strip()


def parse(doc: Any) -> list[ChangeIn]:
    """One change (an object with ``service``) or ``{"changes": [...]}``; a 422 naming the field.

    >>> [c.kind.value for c in parse({"changes": [{"service": "a"}, {"service": "b", "kind": "flag"}]})]
    ['deploy', 'flag']
    >>> parse({"service": "a", "kind": "reboot"})
    Traceback (most recent call last):
    ...
    watchkeeper.errors.InputError: invalid change: kind: Input should be 'deploy', 'rollback', 'config' or 'flag'
    """
    if not isinstance(doc, dict):
        raise InputError("a change is a JSON object with 'service' (or {\"changes\": [...]} for a batch)")
    try:
        if "changes" in doc:
            return ChangeBatch.model_validate(doc).changes
        return [ChangeIn.model_validate(doc)]
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]]
        raise InputError("invalid change: " + "; ".join(parts)) from None


def suspects(found: Sequence[ServiceChange], onset: datetime) -> list[RcaChange]:
    """The changes the ranker may blame: not rollbacks (they restore a known-good state), and not a
    change already rolled back on its service between it and the onset."""
    from watchkeeper.rca import Change as RcaChange

    ordered = sorted(found, key=lambda c: (c.at, c.id))
    out = []
    for i, c in enumerate(ordered):
        if c.kind is ChangeKind.ROLLBACK:
            continue
        undone = any(r.kind is ChangeKind.ROLLBACK and r.service == c.service and c.at <= r.at < onset
                     for r in ordered[i + 1:])
        if not undone:
            out.append(RcaChange(c.at.timestamp(), c.service, c.summary))
    return out


def from_row(row: Mapping[str, Any]) -> ServiceChange:
    return ServiceChange(int(row["id"]), str(row["service"]), ChangeKind(row["kind"]), row["version"],
                         utc(row["at"]), str(row["who"]), row["link"], str(row["description"]))


def view(row: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("id", "service", "kind", "version", "at", "who", "link", "description", "recorded_at", "recorded_by")
    return {k: row[k] for k in keys}


class ChangeLog:
    """Record and read change events (what the API and the ranker call)."""

    def __init__(self, db: Database, clock: Callable[[], datetime], window_s: float = 1800.0) -> None:
        self.db = db
        self.clock = clock
        self.window = timedelta(seconds=window_s)

    def record(self, items: Sequence[ChangeIn], actor: str) -> list[dict[str, Any]]:
        """Store and audit the changes in one transaction; return them as stored."""
        now = self.clock()
        rows = [{"service": c.service, "kind": c.kind.value, "version": c.version,
                 "at": utc(c.at) if c.at is not None else now, "who": c.who or actor, "link": c.link,
                 "description": c.description, "recorded_at": now, "recorded_by": actor} for c in items]
        with self.db.write() as conn:
            ids = store.add_changes(conn, rows)
            audit.append(conn, actor, [
                Change("change.recorded", f"change:{i}", now,
                       {"id": i, **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()
                                    if k not in ("recorded_at", "recorded_by")}})
                for i, row in zip(ids, rows, strict=True)])
        return [view({"id": i, **row}) for i, row in zip(ids, rows, strict=True)]

    def find(self, *, service: str | None = None, since: datetime | None = None,
             limit: int = 1000) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = store.list_changes(conn, services=[service] if service else None, since=since, limit=limit)
        return [view(r) for r in rows]

    def near(self, conn: Any, services: Sequence[str], onset: datetime, end: datetime | None) -> list[dict[str, Any]]:
        """Stored changes on ``services`` from the change window before ``onset`` until ``end``."""
        if not services:
            return []
        return store.list_changes(conn, services=services, since=onset - self.window, until=end)

    def onset(self, conn: Any, incident: Incident) -> datetime:
        """When the incident began: its opening, or its first alert's start when that is earlier."""
        first = store.first_alert_at(conn, incident.id)
        return min(incident.opened_at, utc(first)) if first is not None else incident.opened_at

    def of_incident(self, conn: Any, incident: Incident) -> list[dict[str, Any]]:
        """The changes shown on an incident: on its services, within the change window before its
        onset, up to its resolution (or now)."""
        return [view(r) for r in self.near(conn, incident.services, self.onset(conn, incident),
                                           incident.resolved_at)]


__all__ = ["ChangeBatch", "ChangeIn", "ChangeKind", "ChangeLog", "ServiceChange", "parse", "suspects"]
