"""Which runbooks apply to an incident, and the data their parameters bind from. Pure."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from watchkeeper.execute.runbook import Runbook, Selector
from watchkeeper.model import Cause


@dataclass(frozen=True, slots=True)
class Match:
    alert: Mapping[str, Any] | None
    cause: Cause | None
    service: str

    @property
    def confidence(self) -> float | None:
        return self.cause.confidence if self.cause is not None else None


def _label_ok(value: str | None, expected: str) -> bool:
    if expected.startswith("=~"):
        return value is not None and re.fullmatch(expected[2:], value) is not None
    if expected.startswith("!="):
        return value != expected[2:]
    return value == expected


def _alert_ok(selector: Selector, alert: Mapping[str, Any]) -> bool:
    labels = alert.get("labels") or {}
    if selector.services and not any(fnmatch.fnmatchcase(alert["service"], p) for p in selector.services):
        return False
    if selector.alertnames and alert.get("name") not in selector.alertnames:
        return False
    return all(_label_ok(labels.get(k), v) for k, v in selector.labels.items())


def match(runbook: Runbook, incident: Mapping[str, Any], causes: Sequence[Cause]) -> Match | None:
    """The first firing alert the selector accepts (and the best cause it accepts), or None.

    >>> from watchkeeper.execute.runbook import Runbook
    >>> rb = Runbook.model_validate({"id": "r", "title": "t", "risk": "low", "autonomy": "auto",
    ...     "selector": {"alertnames": ["Down"]}, "steps": [{"name": "s", "command": {"argv": ["true"]}}]})
    >>> inc = {"services": ["web"], "alerts": [{"name": "Down", "service": "web", "status": "firing"}]}
    >>> match(rb, inc, [Cause("web", confidence=0.97)]).confidence
    0.97
    """
    selector = runbook.selector
    firing = [a for a in incident["alerts"] if a.get("status") == "firing"]
    alert = next((a for a in firing if _alert_ok(selector, a)), None)
    if alert is None and (selector.services or selector.alertnames or selector.labels or not firing):
        return None
    service = alert["service"] if alert else incident["services"][0]
    cause = _best_cause(selector, causes, service)
    if selector.causes is not None and cause is None:
        return None
    if selector.causes is not None and selector.causes.changed is not None and cause is not None and (
            bool(cause.evidence.get("changes")) != selector.causes.changed):
        return None  # e.g. a restart cannot undo a deploy: leave a changed cause to a rollback or a person
    if selector.causes is not None and cause is not None:
        # A runbook aimed at the ranked cause answers the cause's own alerts when it has any: a caller's
        # error alert must not send a restart to a service whose own alerts name a bad deploy.
        own = [a for a in firing if a.get("service") == cause.component]
        if own:
            alert = next((a for a in own if _alert_ok(selector, a)), None)
            if alert is None:
                return None
        # it acts on the cause, so the cause is the service its limits and its record name, also when
        # only a caller still alerts (a restarted checkout is no action "on frontend")
        service = cause.component
    return Match(alert, cause, service)


def _best_cause(selector: Selector, causes: Sequence[Cause], service: str) -> Cause | None:
    wanted = selector.causes
    for cause in sorted(causes, key=lambda c: -c.confidence):
        if wanted is None:
            if cause.component == service:
                return cause
            continue
        if wanted.components and not any(fnmatch.fnmatchcase(cause.component, p) for p in wanted.components):
            continue
        if wanted.kinds and cause.kind not in wanted.kinds:
            continue
        if cause.confidence < wanted.min_confidence:
            continue
        return cause
    return None


def binding_data(incident: Mapping[str, Any], found: Match) -> dict[str, Any]:
    """The flat mapping parameters bind from (``alert.labels.instance`` …)."""
    data: dict[str, Any] = {
        "service": found.service, "incident.id": incident["id"], "incident.severity": incident["severity"],
        "incident.title": incident["title"],
    }
    if found.alert is not None:
        a = found.alert
        data.update({"alert.name": a.get("name"), "alert.service": a.get("service"),
                     "alert.resource": a.get("resource"), "alert.severity": a.get("severity"),
                     "alert.fingerprint": a.get("fingerprint")})
        data.update({f"alert.labels.{k}": v for k, v in (a.get("labels") or {}).items()})
    if found.cause is not None:
        data.update({"cause.component": found.cause.component, "cause.kind": found.cause.kind})
    return data
