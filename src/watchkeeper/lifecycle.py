"""Human actions on an incident: acknowledge, mitigate, resolve, reopen, assign, comment. Pure."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from watchkeeper.errors import Conflict, InputError
from watchkeeper.model import Change, Incident, IncidentStatus


class Action(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    ASSIGN = "assign"
    COMMENT = "comment"


_ORDER = [IncidentStatus.OPEN, IncidentStatus.ACKNOWLEDGED, IncidentStatus.MITIGATED,
          IncidentStatus.RESOLVED]


def apply(incident: Incident, action: Action, actor: str, at: datetime, text: str = "") -> Change | None:
    """Apply ``action`` to ``incident`` in place; return the Change to audit, or None if a no-op.

    Moving forward skips states freely (resolve an open incident); acknowledging a resolved
    incident is a conflict: reopen it first.

    >>> from datetime import UTC, datetime
    >>> from watchkeeper.model import Severity
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> inc = Incident(1, "db down", IncidentStatus.OPEN, Severity.CRITICAL, ["db"], t, t)
    >>> apply(inc, Action.ACKNOWLEDGE, "alice", t).kind, inc.acknowledged_at == t
    ('incident.acknowledged', True)
    >>> apply(inc, Action.ACKNOWLEDGE, "bob", t) is None
    True

    Reopening clears the current state's times but keeps the first acknowledgement:

    >>> from datetime import timedelta
    >>> _ = apply(inc, Action.RESOLVE, "alice", t + timedelta(minutes=5))
    >>> apply(inc, Action.REOPEN, "bob", t + timedelta(minutes=9)).payload["cleared"]["acknowledged_at"] == t
    True
    >>> inc.acknowledged_at is None, inc.first_acknowledged_at == t
    (True, True)
    """
    payload: dict[str, object] = {"id": incident.id, "from": incident.status.value}
    if action is Action.COMMENT:
        if not text.strip():
            raise InputError("a comment needs text")
        payload["text"] = text
        return Change("incident.commented", f"incident:{incident.id}", at, payload)
    if action is Action.ASSIGN:
        if not text.strip():
            raise InputError("assign needs an assignee")
        if incident.assignee == text:
            return None
        payload.update(assignee=text, previous=incident.assignee)
        incident.assignee = text
        return Change("incident.assigned", f"incident:{incident.id}", at, payload)
    if action is Action.REOPEN:
        if incident.status is IncidentStatus.OPEN:
            return None
        # the current state's times go; the first acknowledgement and mitigation stay (for MTTA),
        # and the audit record keeps the times this reopen cleared
        payload["cleared"] = {"acknowledged_at": incident.acknowledged_at, "mitigated_at": incident.mitigated_at,
                              "resolved_at": incident.resolved_at}
        incident.status = IncidentStatus.OPEN
        incident.resolved_at = incident.mitigated_at = incident.acknowledged_at = None
        incident.last_activity_at = max(incident.last_activity_at, at)
        return Change("incident.reopened", f"incident:{incident.id}", at, _with(payload, text))

    target = {
        Action.ACKNOWLEDGE: IncidentStatus.ACKNOWLEDGED,
        Action.MITIGATE: IncidentStatus.MITIGATED,
        Action.RESOLVE: IncidentStatus.RESOLVED,
    }[action]
    current = _ORDER.index(incident.status)
    wanted = _ORDER.index(target)
    if current == wanted:
        return None
    if current > wanted:
        raise Conflict(
            f"incident {incident.id} is already {incident.status.value}; "
            f"it cannot be {target.value} (reopen it first)"
        )
    incident.status = target
    # Reaching a later state implies the earlier ones: resolving an open incident acknowledges it.
    if incident.acknowledged_at is None:
        incident.acknowledged_at = at
    if incident.first_acknowledged_at is None:
        incident.first_acknowledged_at = incident.acknowledged_at
    if target in (IncidentStatus.MITIGATED, IncidentStatus.RESOLVED) and incident.mitigated_at is None:
        incident.mitigated_at = at
    if incident.mitigated_at is not None and incident.first_mitigated_at is None:
        incident.first_mitigated_at = incident.mitigated_at
    if target is IncidentStatus.RESOLVED:
        incident.resolved_at = at
    return Change(f"incident.{target.value}", f"incident:{incident.id}", at, _with(payload, text))


def _with(payload: dict[str, object], text: str) -> dict[str, object]:
    if text:
        payload["comment"] = text
    return payload
