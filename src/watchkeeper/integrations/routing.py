"""Routing: which incidents go to which targets (the ``routes:`` settings section).

Routes are tried in order, as Alertmanager's are: the first whose matchers all hold sends the
incident to its targets, and stops the search unless it says ``continue: true``. A route with no
matchers matches everything (a catch-all last). ``events`` narrows a route to some changes
(default: every change its targets take).

```yaml
routes:
  - match: {service: [checkout, payments], severity: [critical, error]}
    to: [oncall-slack, pagerduty]
  - match: {labels: ['team="data"', 'env=~"prod.*"']}
    to: [data-email]
    events: [opened, resolved]
```

Pure: the storage hook hands it the incident's facts; nothing here reads a database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from watchkeeper.errors import ConfigError, InputError
from watchkeeper.integrations.base import EventKind
from watchkeeper.model import Severity
from watchkeeper.suppress.matchers import Matcher, parse_matcher


class Match(BaseModel):
    """Every given matcher must hold. ``service``: any of the incident's services is listed;
    ``severity``: the incident's severity is listed; ``labels``: Alertmanager matchers, each held
    by the labels of at least one of the incident's alerts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service: list[str] = Field(default_factory=list)
    severity: list[Severity] = Field(default_factory=list)
    labels: list[str] = Field(default_factory=list)

    @field_validator("labels")
    @classmethod
    def _matchers(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                parse_matcher(text)
            except InputError as exc:
                raise ValueError(str(exc)) from exc
        return value


class Route(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    match: Match = Field(default_factory=Match)
    to: list[str] = Field(min_length=1, description="target names from integrations.targets")
    events: list[EventKind] = Field(default_factory=list, description="only these changes (default: all)")
    continue_: bool = Field(False, alias="continue", description="keep trying later routes after this one")


@dataclass(frozen=True, slots=True)
class Facts:
    """What routing looks at: the incident's services, severity and its alerts' label sets."""

    services: tuple[str, ...]
    severity: str
    labels: tuple[Mapping[str, str], ...] = ()

    @classmethod
    def sample(cls, doc: Mapping[str, Any]) -> Facts:
        """Facts from a sample incident document (``routes test``): ``service`` or ``services``,
        ``severity``, ``labels`` (one mapping or a list of them).

        >>> Facts.sample({"service": "db", "severity": "critical", "labels": {"team": "data"}})
        Facts(services=('db',), severity='critical', labels=({'team': 'data'},))
        """
        services = doc.get("services", doc.get("service", []))
        if isinstance(services, str):
            services = [services]
        labels = doc.get("labels", [])
        if isinstance(labels, Mapping):
            labels = [labels]
        if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
            raise InputError("'service' must be a name or a list of names")
        if not isinstance(labels, list) or not all(isinstance(m, Mapping) for m in labels):
            raise InputError("'labels' must be a mapping or a list of mappings")
        severity = str(doc.get("severity", "warning"))
        if severity not in {s.value for s in Severity}:
            raise InputError(f"'severity' must be one of {', '.join(s.value for s in Severity)}, not {severity!r}")
        return cls(tuple(services), severity, tuple({str(k): str(v) for k, v in m.items()} for m in labels))


@dataclass(frozen=True, slots=True)
class Hit:
    """One route that matched, and the targets it adds (for ``routes test``)."""

    index: int
    targets: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class _Compiled:
    route: Route
    matchers: tuple[Matcher, ...]


@dataclass
class Router:
    """Compiled routes plus what each target accepts.

    >>> r = Router([Route(match=Match(severity=[Severity.CRITICAL]), to=["pager"]),
    ...             Route(to=["chat"])], {"pager": set(EventKind), "chat": set(EventKind)})
    >>> r.targets(Facts(("db",), "critical"), EventKind.OPENED)
    ['pager']
    >>> r.targets(Facts(("db",), "warning"), EventKind.OPENED)
    ['chat']
    """

    routes: Sequence[Route]
    #: target name -> the events it takes (from its config)
    accepts: Mapping[str, set[EventKind]] = field(default_factory=dict)
    _compiled: list[_Compiled] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        unknown = sorted({t for r in self.routes for t in r.to if t not in self.accepts})
        if unknown:
            known = ", ".join(sorted(self.accepts)) or "none"
            raise ConfigError(f"routes name unknown integration targets: {', '.join(unknown)} "
                              f"(integrations.targets has: {known})")
        self._compiled = [_Compiled(r, tuple(parse_matcher(m) for m in r.match.labels)) for r in self.routes]

    def __bool__(self) -> bool:
        return bool(self.routes)

    def explain(self, facts: Facts, event: EventKind | None = None) -> list[Hit]:
        """Every route that sends ``facts`` somewhere, in order, with the reason."""
        hits: list[Hit] = []
        for index, compiled in enumerate(self._compiled):
            reason = _matches(compiled, facts)
            if reason is None:
                continue
            if event is not None and compiled.route.events and event not in compiled.route.events:
                continue
            targets = tuple(t for t in compiled.route.to if event is None or event in self.accepts[t])
            hits.append(Hit(index, targets, reason))
            if not compiled.route.continue_:
                break
        return hits

    def targets(self, facts: Facts, event: EventKind) -> list[str]:
        """The targets that get a message for ``event`` on an incident with ``facts``."""
        return list(dict.fromkeys(t for hit in self.explain(facts, event) for t in hit.targets))


def _matches(compiled: _Compiled, facts: Facts) -> str | None:
    """Why the route matches (a sentence), or None."""
    match, why = compiled.route.match, []
    if match.service:
        hit = [s for s in facts.services if s in match.service]
        if not hit:
            return None
        why.append(f"service {hit[0]}")
    if match.severity:
        if facts.severity not in {s.value for s in match.severity}:
            return None
        why.append(f"severity {facts.severity}")
    for matcher in compiled.matchers:
        if not any(matcher.matches(labels) for labels in facts.labels or ({},)):
            return None
        why.append(str(matcher))
    return "matches " + ", ".join(why) if why else "matches everything (no matchers)"
