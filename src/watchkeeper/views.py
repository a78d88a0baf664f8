"""What the service answers about incidents (and silences, dead letters), as typed values.

The API and the CLI both read incidents: the service builds these frozen values, the server
turns them into JSON with :meth:`as_dict` (the HTTP body is exactly that dict), the CLI prints
their attributes, and the remote client (``--url``) parses the server's JSON back into the same
types with :meth:`from_json`, so a CLI command reads one shape wherever its data came from.

``view["key"]`` and ``view.get("key")`` read the JSON form too (as the HTTP API shows it): kept for
scripts, templates and tests that read the dicts these calls used to return; new code reads attributes.

>>> import orjson
>>> from datetime import UTC
>>> T = datetime(2026, 1, 1, tzinfo=UTC)
>>> alert = AlertInIncident("fp", "Down", "db", "", Status.FIRING, Severity.WARNING, {}, "db down", 1, T, T, None,
...                         "opened", "first alert of db")
>>> alert.as_dict()["status"], alert["reason"]
('firing', 'opened')
>>> AlertInIncident.from_json(orjson.loads(orjson.dumps(alert.as_dict(), option=orjson.OPT_UTC_Z))) == alert
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from watchkeeper.model import Cause, Incident, IncidentStatus, Severity, Status

__all__ = [
    "AlertInIncident", "DeadLetter", "IncidentDetail", "IncidentSummary", "IncidentView", "SilenceView", "TopCause",
]


#: Faster than ``Status(value)`` on the list path (as ``model.STATUS_BY_VALUE``).
_STATUS: dict[str, Status] = {s.value: s for s in Status}
_SEVERITY: dict[str, Severity] = {s.value: s for s in Severity}


def _when(value: Any) -> datetime | None:
    """A time from JSON: ISO 8601 text (``Z`` or an offset), a datetime already, or None."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _at(value: Any) -> datetime:
    found = _when(value)
    if found is None:
        raise ValueError("a time is missing")
    return found


class _Json:
    """``view[key]``: the JSON form's value (what the HTTP API shows under that key)."""

    __slots__ = ()

    def as_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.as_dict().get(key, default)


@dataclass(frozen=True, slots=True)
class AlertInIncident(_Json):
    """One alert of an incident: its state now, and when and why it joined."""

    fingerprint: str
    name: str
    service: str
    resource: str
    status: Status
    severity: Severity
    labels: Mapping[str, str]
    summary: str
    count: int
    joined_at: datetime
    last_seen: datetime
    resolved_at: datetime | None
    #: the join reason (``opened``, ``topology``, ``moved`` …) and its sentence
    reason: str
    reason_detail: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint, "name": self.name, "service": self.service, "resource": self.resource,
            "status": self.status._value_, "severity": self.severity._value_, "labels": dict(self.labels),
            "summary": self.summary, "count": self.count, "joined_at": self.joined_at,
            "last_seen": self.last_seen, "resolved_at": self.resolved_at,
            "reason": self.reason, "reason_detail": self.reason_detail,
        }

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> AlertInIncident:
        """From storage's row (``queries.incident_alerts_of``: times are ``datetime`` already). On the
        incident list's path (every alert of every listed incident): enums by dict lookup, no parsing."""
        return cls(row["fingerprint"], row["name"], row["service"], row["resource"], _STATUS[row["status"]],
                   _SEVERITY[row["severity"]], row["labels"], row["summary"], row["count"], row["joined_at"],
                   row["last_seen"], row["resolved_at"], row["reason"], row["reason_detail"])

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertInIncident:
        """From the API's JSON (times may be text)."""
        return cls(data["fingerprint"], data["name"], data["service"], data["resource"], Status(data["status"]),
                   Severity(data["severity"]), data["labels"], data["summary"], data["count"],
                   _at(data["joined_at"]), _at(data["last_seen"]), _when(data["resolved_at"]), data["reason"],
                   data["reason_detail"])


@dataclass(frozen=True, slots=True)
class TopCause(_Json):
    """One of an incident's best ranked causes, as the incident list shows it."""

    component: str
    kind: str
    confidence: float
    model: str

    def as_dict(self) -> dict[str, Any]:
        return {"component": self.component, "kind": self.kind, "confidence": self.confidence, "model": self.model}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TopCause:
        return cls(data["component"], data["kind"], data["confidence"], data["model"])


@dataclass(frozen=True, slots=True)
class IncidentView(_Json):
    """An incident with its alerts: what every incident answer starts with."""

    id: int
    title: str
    status: IncidentStatus
    severity: Severity
    services: tuple[str, ...]
    opened_at: datetime
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    #: when its first alert started at the source (MTTA/MTTR "from source start")
    started_at: datetime | None
    first_acknowledged_at: datetime | None
    first_mitigated_at: datetime | None
    last_activity_at: datetime
    assignee: str | None
    firing_alerts: int
    alert_count: int
    alerts: tuple[AlertInIncident, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "status": self.status._value_,
            "severity": self.severity._value_, "services": list(self.services),
            "opened_at": self.opened_at, "acknowledged_at": self.acknowledged_at,
            "mitigated_at": self.mitigated_at, "resolved_at": self.resolved_at,
            "started_at": self.started_at, "first_acknowledged_at": self.first_acknowledged_at,
            "first_mitigated_at": self.first_mitigated_at,
            "last_activity_at": self.last_activity_at, "assignee": self.assignee,
            "firing_alerts": self.firing_alerts, "alert_count": self.alert_count,
            "alerts": [a.as_dict() for a in self.alerts],
        }

    @staticmethod
    def _fields(incident: Incident, alerts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {
            "id": incident.id, "title": incident.title, "status": incident.status, "severity": incident.severity,
            "services": tuple(incident.services), "opened_at": incident.opened_at,
            "acknowledged_at": incident.acknowledged_at, "mitigated_at": incident.mitigated_at,
            "resolved_at": incident.resolved_at, "started_at": incident.started_at,
            "first_acknowledged_at": incident.first_acknowledged_at,
            "first_mitigated_at": incident.first_mitigated_at, "last_activity_at": incident.last_activity_at,
            "assignee": incident.assignee, "firing_alerts": incident.firing_count,
            "alert_count": incident.alert_count, "alerts": tuple(AlertInIncident.from_row(a) for a in alerts),
        }

    @staticmethod
    def _json_fields(data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": data["id"], "title": data["title"], "status": IncidentStatus(data["status"]),
            "severity": Severity(data["severity"]), "services": tuple(data["services"]),
            "opened_at": _at(data["opened_at"]), "acknowledged_at": _when(data["acknowledged_at"]),
            "mitigated_at": _when(data["mitigated_at"]), "resolved_at": _when(data["resolved_at"]),
            "started_at": _when(data.get("started_at")),
            "first_acknowledged_at": _when(data.get("first_acknowledged_at")),
            "first_mitigated_at": _when(data.get("first_mitigated_at")),
            "last_activity_at": _at(data["last_activity_at"]), "assignee": data["assignee"],
            "firing_alerts": data["firing_alerts"], "alert_count": data["alert_count"],
            "alerts": tuple(AlertInIncident.from_json(a) for a in data["alerts"]),
        }


@dataclass(frozen=True, slots=True)
class IncidentSummary(IncidentView):
    """An incident as the list shows it: with its three best ranked causes."""

    causes: tuple[TopCause, ...]

    def as_dict(self) -> dict[str, Any]:
        return {**IncidentView.as_dict(self), "causes": [c.as_dict() for c in self.causes]}

    @classmethod
    def of(cls, incident: Incident, alerts: Sequence[Mapping[str, Any]],
           causes: Sequence[Mapping[str, Any]]) -> IncidentSummary:
        return cls(**cls._fields(incident, alerts), causes=tuple(TopCause.from_json(c) for c in causes))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IncidentSummary:
        return cls(**cls._json_fields(data), causes=tuple(TopCause.from_json(c) for c in data.get("causes", ())))


@dataclass(frozen=True, slots=True)
class IncidentDetail(IncidentView):
    """One incident in full: ranked causes, policy decisions, action runs, changes on its services, and
    its timeline (read from the audit log: one record per entry, its payload's keys as they were written)."""

    causes: tuple[Cause, ...]
    decisions: tuple[Mapping[str, Any], ...]
    actions: tuple[Mapping[str, Any], ...]
    changes: tuple[Mapping[str, Any], ...]
    timeline: tuple[Mapping[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return {**IncidentView.as_dict(self), "causes": [asdict(c) for c in self.causes],
                "decisions": [dict(d) for d in self.decisions], "actions": [dict(a) for a in self.actions],
                "changes": [dict(c) for c in self.changes], "timeline": [dict(t) for t in self.timeline]}

    @classmethod
    def of(cls, incident: Incident, alerts: Sequence[Mapping[str, Any]], causes: Sequence[Cause],
           decisions: Sequence[Mapping[str, Any]], actions: Sequence[Mapping[str, Any]],
           changes: Sequence[Mapping[str, Any]], timeline: Sequence[Mapping[str, Any]]) -> IncidentDetail:
        return cls(**cls._fields(incident, alerts), causes=tuple(causes), decisions=tuple(decisions),
                   actions=tuple(actions), changes=tuple(changes), timeline=tuple(timeline))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> IncidentDetail:
        causes = tuple(Cause(c["component"], c["kind"], c["score"], c["confidence"], c["model"], c["evidence"])
                       for c in data.get("causes", ()))
        return cls(**cls._json_fields(data), causes=causes, decisions=tuple(data.get("decisions", ())),
                   actions=tuple(data.get("actions", ())), changes=tuple(data.get("changes", ())),
                   timeline=tuple(data.get("timeline", ())))


@dataclass(frozen=True, slots=True)
class SilenceView(_Json):
    """A silence as stored: its matchers (as text), when it mutes, who made it and why."""

    id: int
    matchers: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "matchers": list(self.matchers), "starts_at": self.starts_at, "ends_at": self.ends_at,
                "created_by": self.created_by, "comment": self.comment, "created_at": self.created_at}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> SilenceView:
        return cls(row["id"], tuple(row["matchers"]), _at(row["starts_at"]), _at(row["ends_at"]), row["created_by"],
                   row["comment"], _at(row["created_at"]))


@dataclass(frozen=True, slots=True)
class DeadLetter(_Json):
    """A rejected request body, kept with the error it got (``body``: the bytes as received, cut at the
    size limit when ``truncated``)."""

    id: int
    received_at: datetime
    source: str
    content_type: str | None
    status: int
    error: str
    size: int
    truncated: bool
    body: bytes

    def as_dict(self, body_limit: int | None = None) -> dict[str, Any]:
        """The JSON form: the body as text (undecodable bytes replaced), its first ``body_limit`` bytes."""
        return {"id": self.id, "received_at": self.received_at, "source": self.source,
                "content_type": self.content_type, "status": self.status, "error": self.error, "size": self.size,
                "truncated": self.truncated, "body": self.body[:body_limit].decode("utf-8", "replace")}

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)  # as the row read: the body as bytes

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> DeadLetter:
        body = row["body"]
        return cls(row["id"], _at(row["received_at"]), row["source"], row["content_type"], row["status"],
                   row["error"], row["size"], row["truncated"], body if isinstance(body, bytes) else str(body).encode())

    from_json = from_row  # the JSON form has the same keys; its body is text
