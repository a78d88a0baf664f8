"""Correlation strategies. Each one says which keys an alert is indexed under (``index``) and
which keys it looks for among active incidents (``probe``), with the reason a join gives.

* :class:`LabelGroup` — alerts sharing the values of ``group_by`` labels (Alertmanager's
  ``group_by``); ``group_by: [service]`` is the default grouping.
* :class:`Topology` — alerts on services connected in the service graph (within ``hops``).
* :class:`TextTemplate` — alerts whose summaries share a template once numbers, hosts, ids and
  percentages are masked (``disk 91% on db-1`` ≈ ``disk 97% on db-2``), optionally only within
  related services.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from watchkeeper.model import Alert


class JoinReason(StrEnum):
    """Why an alert went to the incident it went to."""

    NEW_INCIDENT = "new_incident"
    SAME_SERVICE = "same_service"
    SAME_LABELS = "same_labels"
    TOPOLOGY = "topology"
    SIMILAR_TEXT = "similar_text"
    CO_OCCURRENCE = "co_occurrence"
    STILL_OPEN = "still_open"
    HUMAN = "human"


@dataclass(frozen=True, slots=True)
class Probe:
    key: str
    reason: JoinReason
    detail: str


class Strategy(Protocol):
    name: str

    def index(self, alert: Alert) -> list[str]:
        """Keys under which an incident holding ``alert`` can be found."""
        ...

    def probe(self, alert: Alert) -> list[Probe]:
        """Keys to look up for ``alert``, best first, with the reason each would give."""
        ...


class LabelGroup:
    """
    >>> from datetime import UTC, datetime
    >>> from watchkeeper.model import Severity, Status
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> a = Alert("f", "am", "Down", "db", "db-1", Severity.CRITICAL, Status.FIRING,
    ...           {"cluster": "eu", "service": "db"}, "down", t, t)
    >>> LabelGroup(["cluster"]).index(a)
    ['labels:cluster=eu']
    """

    name = "labels"

    def __init__(self, group_by: Iterable[str] = ("service",)) -> None:
        self.group_by = tuple(group_by)
        self.reason = JoinReason.SAME_SERVICE if self.group_by == ("service",) else JoinReason.SAME_LABELS

    def _key(self, alert: Alert) -> str | None:
        values = []
        for label in self.group_by:
            value = alert.service if label == "service" else alert.labels.get(label)
            if not value:
                return None
            values.append(f"{label}={value}")
        return "labels:" + ",".join(values)

    def index(self, alert: Alert) -> list[str]:
        key = self._key(alert)
        return [key] if key else []

    def keys(self, alert: Alert) -> list[str]:
        """What ``index`` and ``probe`` use: the one key."""
        key = self._key(alert)
        return [key] if key else []

    def probe(self, alert: Alert) -> list[Probe]:
        key = self._key(alert)
        if key is None:
            return []
        what = f"service {alert.service!r}" if self.reason is JoinReason.SAME_SERVICE else key.removeprefix("labels:")
        return [Probe(key, self.reason, f"same {what}")]


class Topology:
    """Services joined by an edge of the dependency graph (either direction), within ``hops``.
    Edges come from the configured graph and, with ``labels``, from alerts themselves: an alert
    whose ``depends_on`` label says ``payments-db,cache`` adds those edges for its service.

    >>> t = Topology({"frontend": ["checkout"], "checkout": ["payments-db"]}, hops=2)
    >>> sorted(t.neighbours("payments-db"))
    ['checkout', 'frontend']
    """

    name = "topology"

    def __init__(self, graph: Mapping[str, Iterable[str]], hops: int = 1, labels: Iterable[str] = ()) -> None:
        self.edges: dict[str, set[str]] = {}
        for source, targets in graph.items():
            for target in targets:
                self._edge(source, target)
        self.hops = hops
        self.labels = tuple(labels)

    def _edge(self, a: str, b: str) -> None:
        if a and b and a != b:
            self.edges.setdefault(a, set()).add(b)
            self.edges.setdefault(b, set()).add(a)

    def _learn(self, alert: Alert) -> None:
        for label in self.labels:
            for other in (alert.labels.get(label) or "").split(","):
                self._edge(alert.service, other.strip())

    def neighbours(self, service: str) -> dict[str, int]:
        found, frontier = {service: 0}, [service]
        for hop in range(1, self.hops + 1):
            nxt = []
            for node in frontier:
                for other in self.edges.get(node, ()):
                    if other not in found:
                        found[other] = hop
                        nxt.append(other)
            frontier = nxt
        del found[service]
        return found

    def index(self, alert: Alert) -> list[str]:
        return [f"service:{alert.service}"]

    def probe(self, alert: Alert) -> list[Probe]:
        if self.labels:
            self._learn(alert)
        return [
            Probe(f"service:{other}", JoinReason.TOPOLOGY,
                  f"{alert.service!r} and {other!r} are {hops} hop{'s' if hops > 1 else ''} apart in the service graph")
            for other, hops in sorted(self.neighbours(alert.service).items(), key=lambda kv: (kv[1], kv[0]))
        ]


_MASKS = [
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b[0-9a-f]{8,}\b", re.I), "<id>"),
    (re.compile(r"\b[\w.-]*\d[\w.-]*\b"), "<*>"),  # any token holding a digit: hosts, sizes, counts
    (re.compile(r"\d+(?:\.\d+)?%"), "<*>%"),
]


def template(text: str) -> str:
    """
    >>> template("disk 91% on db-1") == template("disk 97.5% on db-22")
    True
    >>> template("connection refused from 10.0.0.7:5432")
    'connection refused from <ip>'
    """
    out = text.strip().lower()
    for pattern, mask in _MASKS:
        out = pattern.sub(mask, out)
    return re.sub(r"\s+", " ", out)


class TextTemplate:
    """Same masked summary template; with ``scope="service"`` only within one service."""

    name = "text"

    def __init__(self, scope: str = "any") -> None:
        self.scope = scope

    def _key(self, alert: Alert) -> str:
        prefix = f"{alert.service}|" if self.scope == "service" else ""
        return f"text:{prefix}{template(alert.summary or alert.name)}"

    def index(self, alert: Alert) -> list[str]:
        return [self._key(alert)]

    def keys(self, alert: Alert) -> list[str]:
        """What ``index`` and ``probe`` use: the one key."""
        return [self._key(alert)]

    def probe(self, alert: Alert) -> list[Probe]:
        return [Probe(self._key(alert), JoinReason.SIMILAR_TEXT,
                      f"summary matches the template {template(alert.summary or alert.name)!r}")]


class CoOccurring:
    """Alert types that historically fire together (a learned graph: ``{type: [related types]}``),
    joined in either direction. Learn the graph with ``watchkeeper correlation learn``.

    >>> from datetime import UTC, datetime
    >>> from watchkeeper.model import Severity, Status
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> a = Alert("f", "am", "LinkDown", "r1", "", Severity.CRITICAL, Status.FIRING, {}, "x", t, t)
    >>> [p.key for p in CoOccurring({"LinkDown": ["BgpSessionDown"]}).probe(a)]
    ['name:BgpSessionDown']
    """

    name = "cooccurrence"

    def __init__(self, graph: Mapping[str, Iterable[str]]) -> None:
        self.related: dict[str, set[str]] = {}
        for source, targets in graph.items():
            for target in targets:
                self.related.setdefault(source, set()).add(target)
                self.related.setdefault(target, set()).add(source)

    def index(self, alert: Alert) -> list[str]:
        return [f"name:{alert.name}"] if alert.name else []

    def probe(self, alert: Alert) -> list[Probe]:
        return [Probe(f"name:{other}", JoinReason.CO_OCCURRENCE,
                      f"{alert.name!r} and {other!r} historically fire together")
                for other in sorted(self.related.get(alert.name, ()))]
