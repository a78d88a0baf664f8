"""Correlation strategies. Each one says which keys an alert is indexed under (``index``) and
which keys it looks for among active incidents (``probe``), with the reason a join gives.

* :class:`LabelGroup` — alerts sharing the values of ``group_by`` labels (Alertmanager's
  ``group_by``); ``group_by: [service]`` is the default grouping.
* :class:`Topology` — alerts on services connected in the service graph (within ``hops``).
* :class:`TextTemplate` — alerts whose summaries share a template once numbers, hosts, ids and
  percentages are masked (``disk 91% on db-1`` ≈ ``disk 97% on db-2``), optionally only within
  related services.
* :class:`Host` — alerts on the same host (the host part of ``instance``).

Each probe carries a ``weight``: how much a join through it is evidence that the two alerts share a
cause (before the onset times are weighed, see :mod:`watchkeeper.correlate.evidence`), and an
``anchor``: the service of the incident whose onset the alert's onset is compared with.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from watchkeeper.model import Alert


class JoinReason(StrEnum):
    """Why an alert went to the incident it went to."""

    NEW_INCIDENT = "new_incident"
    SAME_SERVICE = "same_service"
    SAME_LABELS = "same_labels"
    TOPOLOGY = "topology"
    SIMILAR_TEXT = "similar_text"
    CO_OCCURRENCE = "co_occurrence"
    SAME_HOST = "same_host"
    MENTIONED = "mentioned"
    STILL_OPEN = "still_open"
    RETURNED = "returned"
    SPLIT = "split"
    HUMAN = "human"


@dataclass(frozen=True, slots=True)
class Probe:
    key: str
    reason: JoinReason
    detail: str
    #: evidence of a shared cause, 0..1, before onset times are weighed
    weight: float = 1.0
    #: the incident's service whose onset is compared with the alert's (None: the whole incident)
    anchor: str | None = None
    #: the alert would be a symptom of the anchor, so it cannot have started well before the anchor's
    #: first alert (onset order, see ``JoinPolicy.lead``)
    after: bool = False


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
    #: same service (or labels), another alert name; the same alert name gets a bonus (evidence.py)
    weight = 0.5

    def __init__(self, group_by: Iterable[str] = ("service",)) -> None:
        self.group_by = tuple(group_by)
        self.reason = JoinReason.SAME_SERVICE if self.group_by == ("service",) else JoinReason.SAME_LABELS
        self.by_service = "service" in self.group_by
        self._service_only = self.group_by == ("service",)
        self._cache: dict[str, list[Probe]] = {}

    @staticmethod
    def _service(alert: Alert) -> str:
        """The alert's service; for a host-level alert (its service is the exporter's job, ``node``)
        the job on its host: one job on every host says nothing about a shared cause."""
        if alert.service in Host.NODE_JOBS:
            host = Host.host(alert.resource)
            if host:
                return f"{alert.service}@{host}"
        return alert.service

    def _key(self, alert: Alert) -> str | None:
        if self._service_only:
            return f"labels:service={self._service(alert)}" if alert.service else None
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
        service = self._service(alert)
        cached = self._cache.get(service) if self._service_only else None
        if cached is not None:
            return cached
        key = self._key(alert)
        if key is None:
            return []
        what = f"service {service!r}" if self.reason is JoinReason.SAME_SERVICE else key.removeprefix("labels:")
        probes = [Probe(key, self.reason, f"same {what}", self.weight, alert.service if self.by_service else None)]
        if self._service_only:
            _remember(self._cache, service, probes)
        return probes


class Topology:
    """Services joined along the dependency graph, within ``hops``, in the direction a fault travels.
    Edges come from the configured graph (``service: [services it calls]``) and, with ``labels``,
    from alerts themselves: an alert whose ``depends_on`` label says ``payments-db,cache`` adds those
    edges for its service.

    * an alert on a **caller** of an incident's service joins it (a symptom of a failing
      dependency; weight 0.8 at 1 hop, less further away), unless its name says its own target
      failed (:func:`own_failure`: a caller of a failing dependency keeps running) or it started well
      before the dependency's first alert (onset order, ``JoinPolicy.lead``);
    * an alert on a **dependency** of an incident's service is possibly related (0.45 at 1 hop):
      it may be the cause whose own alert fired after its symptoms, or a second fault under a
      caller that fails for its own reasons; it joins when the callers' alerts name it (see
      :class:`Mentions`). When another dependency in the incident already explains that caller,
      it is a second origin: 0.3;
    * **siblings** (two callers of one dependency, two dependencies of one caller) are only
      possibly related (0.3): they join each other through the shared service when it is in the
      incident, never on their own.

    >>> t = Topology({"frontend": ["checkout"], "checkout": ["payments-db"]}, hops=2)
    >>> sorted(t.neighbours("payments-db"))
    ['checkout', 'frontend']
    >>> [(p.key, p.weight) for p in t.probe_service("checkout")]
    [('service:payments-db', 0.8), ('service:frontend', 0.45)]
    """

    name = "topology"
    CALLER = (0.0, 0.8, 0.7, 0.6, 0.55, 0.5)       # by hops: the alert's service calls the incident's
    DEPENDENCY = (0.0, 0.45, 0.4, 0.35, 0.35, 0.35)  # by hops: the incident's service calls the alert's
    SIBLING = 0.3
    EXPLAINED = 0.3

    def __init__(self, graph: Mapping[str, Iterable[str]], hops: int = 1, labels: Iterable[str] = ()) -> None:
        self.edges: dict[str, set[str]] = {}
        self.deps: dict[str, set[str]] = {}
        self.callers: dict[str, set[str]] = {}
        self._probes: dict[str, list[Probe]] = {}
        self._closures: dict[tuple[str, bool], dict[str, int]] = {}
        #: per service, its probes without the caller ones (for an alert saying its own target failed)
        self._own: dict[str, list[Probe]] = {}
        #: (alert's service, anchor) → what the anchor calls, when the anchor is a dependency of a failing
        #: caller (``adjust``), else None
        self._explainers: dict[tuple[str, str], dict[str, int] | None] = {}
        for source, targets in graph.items():
            for target in targets:
                self._edge(source, target)
        self.hops = hops
        self.labels = tuple(labels)

    def _edge(self, a: str, b: str) -> None:
        """``a`` calls ``b``."""
        if a and b and a != b and b not in self.deps.get(a, ()):
            self.edges.setdefault(a, set()).add(b)
            self.edges.setdefault(b, set()).add(a)
            self.deps.setdefault(a, set()).add(b)
            self.callers.setdefault(b, set()).add(a)
            self._probes.clear()
            self._closures.clear()
            self._explainers.clear()
            self._own.clear()

    def add_edge(self, caller: str, callee: str) -> bool:
        """Add ``caller`` → ``callee`` learned elsewhere (the call graph seen in traces), unless the
        graph has the reverse edge (what was configured wins); whether the graph gained it.

        >>> t = Topology({"web": ["db"]})
        >>> t.add_edge("db", "web"), t.add_edge("web", "cache"), sorted(t.neighbours("web"))
        (False, True, ['cache', 'db'])
        """
        if not caller or not callee or caller == callee or caller in self.deps.get(callee, ()):
            return False
        known = callee in self.deps.get(caller, ())
        self._edge(caller, callee)
        return not known

    def _learn(self, alert: Alert) -> None:
        for label in self.labels:
            for other in (alert.labels.get(label) or "").split(","):
                self._edge(alert.service, other.strip())

    def neighbours(self, service: str) -> dict[str, int]:
        """Services within ``hops`` in either direction (any path), with their distance."""
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

    def closure(self, service: str, downstream: bool) -> dict[str, int]:
        """What ``service`` calls (``downstream``) or what calls it, within ``hops``, one direction."""
        cached = self._closures.get((service, downstream))
        if cached is not None:
            return cached
        step = self.deps if downstream else self.callers
        found, frontier = {service: 0}, [service]
        for hop in range(1, self.hops + 1):
            nxt = []
            for node in frontier:
                for other in step.get(node, ()):
                    if other not in found:
                        found[other] = hop
                        nxt.append(other)
            frontier = nxt
        del found[service]
        self._closures[(service, downstream)] = found
        return found

    def index(self, alert: Alert) -> list[str]:
        return [f"service:{alert.service}"]

    def probe(self, alert: Alert) -> list[Probe]:
        if self.labels:
            self._learn(alert)
        if not own_failure(alert.name):
            return self.probe_service(alert.service)
        probes = self._own.get(alert.service)
        if probes is None:
            probes = self._own[alert.service] = [p for p in self.probe_service(alert.service) if not p.after]
        return probes

    def probe_service(self, service: str) -> list[Probe]:
        probes = self._probes.get(service)
        if probes is not None:
            return probes
        probes, seen = [], {service}
        for other, hops in sorted(self.closure(service, True).items(), key=lambda kv: (kv[1], kv[0])):
            seen.add(other)
            probes.append(Probe(f"service:{other}", JoinReason.TOPOLOGY,
                                f"{service!r} calls {other!r} ({_hops(hops)}): a caller of a failing dependency",
                                self.CALLER[min(hops, 5)], other, after=True))
        for other, hops in sorted(self.closure(service, False).items(), key=lambda kv: (kv[1], kv[0])):
            if other not in seen:
                seen.add(other)
                probes.append(Probe(f"service:{other}", JoinReason.TOPOLOGY,
                                    f"{other!r} calls {service!r} ({_hops(hops)}): the dependency of a failing caller",
                                    self.DEPENDENCY[min(hops, 5)], other))
        siblings: dict[str, str] = {}
        for shared in sorted(self.deps.get(service, ())):
            for other in sorted(self.callers.get(shared, ())):
                siblings.setdefault(other, f"both call {shared!r}")
        for shared in sorted(self.callers.get(service, ())):
            for other in sorted(self.deps.get(shared, ())):
                siblings.setdefault(other, f"both called by {shared!r}")
        for other, why in siblings.items():
            if other not in seen:
                probes.append(Probe(f"service:{other}", JoinReason.TOPOLOGY,
                                    f"{service!r} and {other!r} are siblings ({why}): possibly related",
                                    self.SIBLING, other))
        self._probes[service] = probes
        return probes

    def adjust(self, probe: Probe, alert: Alert, services: Iterable[str]) -> float:
        """A dependency joining through a caller that another dependency in the incident already
        explains is a second origin: only possibly related."""
        anchor = probe.anchor
        if anchor is None:
            return probe.weight
        key = (alert.service, anchor)
        if key in self._explainers:
            own = self._explainers[key]
        else:  # None: the anchor is not a dependency of a failing caller
            own = self._explainers[key] = None if anchor not in self.closure(alert.service, False) or (
                anchor in self.closure(alert.service, True)) else self.closure(anchor, True)
        if own is None:
            return probe.weight
        service = alert.service
        if any(s in own and s != service for s in services):
            return self.EXPLAINED
        return probe.weight


_OWN = re.compile(r"(?i)down|unreachable|crash|oom|restart|unavailable|absent|missing")


@functools.lru_cache(maxsize=4096)
def own_failure(name: str) -> bool:
    """Whether an alert name says its own target failed (``ServiceDown``, ``InstanceDown``,
    ``TargetMissing``, ``PodCrashLooping``, ``…OOM…``): the kind of symptom a failing dependency does not
    cause in its callers (they keep running and fail their requests), so such an alert is never joined
    as a caller's symptom (:class:`Topology`).

    >>> own_failure("InstanceDown"), own_failure("DependencyErrors"), own_failure("HighErrorRate")
    (True, False, False)
    """
    return _OWN.search(name) is not None


_LATENCY = re.compile(r"(?i)latency|slow|duration|response_?time")
_ERRORS = re.compile(r"(?i)error|5xx|fail")
#: what a caller's symptom of each signal can come from in its dependency: failing requests from a
#: dependency that fails its requests or is down, slow requests from a slow dependency
_CAUSES = {"errors": frozenset({"errors", "down"}), "latency": frozenset({"latency"})}


@functools.lru_cache(maxsize=4096)
def signals(name: str) -> frozenset[str]:
    """The golden signals an alert name speaks of: ``latency``, ``errors``, ``down`` (its own target
    failed, :func:`own_failure`); empty when the name says none of them (``DiskFull``,
    ``ConnectionPoolExhausted``).

    >>> sorted(signals("HighLatency")), sorted(signals("ErrorBudgetBurn")), sorted(signals("ServiceDown"))
    (['latency'], ['errors'], ['down'])
    >>> signals("ConnectionPoolExhausted")
    frozenset()
    """
    found = set()
    if _LATENCY.search(name):
        found.add("latency")
    if _ERRORS.search(name):
        found.add("errors")
    if own_failure(name):
        found.add("down")
    return frozenset(found)


@functools.lru_cache(maxsize=4096)
def causes(name: str) -> frozenset[str] | None:
    """The signals a dependency must show for an alert of this name on its caller to be its symptom:
    a caller's errors follow a dependency's errors or its being down, a caller's latency a dependency's
    latency. None when the name says neither (anything may cause it).

    >>> sorted(causes("HighErrorRate")), sorted(causes("HighLatency")), causes("QueueBacklog")
    (['down', 'errors'], ['latency'], None)
    """
    found = [_CAUSES[s] for s in signals(name) if s in _CAUSES]
    return frozenset().union(*found) if found else None


#: Probes kept per strategy, at most: a cache of values (cleared when full, so it never changes a
#: result); ~0.8 KiB an entry with its strings (Host: two probes per host; tracemalloc), so ~8 MiB when full.
PROBES_KEPT = 10_000


def _remember(cache: dict[Any, list[Probe]], key: Any, probes: list[Probe], limit: int = PROBES_KEPT) -> None:
    """Probes are values: keep them per key, within a bound (cleared when full)."""
    if len(cache) >= limit:
        cache.clear()
    cache[key] = probes


def _hops(n: int) -> str:
    return f"{n} hop{'s' if n > 1 else ''}"


class Host:
    """Alerts on the same host: the host part of ``resource`` (``instance``: ``data-1:5432`` →
    ``data-1``), in the direction a host fault travels: a service alert joins an incident holding a
    host-level alert of its host (``job="node"``: a host fault explains what runs on it; 0.7); a
    host-level alert on a host whose services are in an incident is only possibly related (0.4: a
    host fault or a victim of that incident's load); two service alerts that merely share a host are
    only possibly related (0.3). Loopback
    addresses carry nothing (every lab service runs on 127.0.0.1), and a host seen under more than
    ``max_services`` services is shared too widely to be evidence. The services seen are kept for
    the ``max_hosts`` most recently seen hosts (a tuple each, ~0.2 KiB): a host quiet for longer
    than the others is forgotten first and starts afresh when seen again.

    >>> from datetime import UTC, datetime
    >>> from watchkeeper.model import Severity, Status
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> a = Alert("f", "am", "Down", "db", "data-1:5432", Severity.CRITICAL, Status.FIRING, {}, "x", t, t)
    >>> Host().index(a), [(p.key, p.weight) for p in Host().probe(a)]
    (['host:data-1'], [('node:data-1', 0.7), ('host:data-1', 0.3)])
    >>> Host().index(Alert("g", "am", "Down", "db", "127.0.0.1:5432", Severity.CRITICAL, Status.FIRING, {}, "x", t, t))
    []
    """

    name = "host"
    NODE, LATE, SHARED = 0.7, 0.4, 0.3
    LOOPBACK = ("127.", "localhost", "::1", "[::1]", "0.0.0.0")  # noqa: S104 - names, not a bind
    NODE_JOBS = ("node", "node-exporter", "node_exporter", "host")

    #: hosts whose services are remembered, at most (~4 MiB when full)
    MAX_HOSTS = 20_000

    def __init__(self, max_services: int = 3, node_jobs: Iterable[str] = NODE_JOBS, max_hosts: int = MAX_HOSTS) -> None:
        self.max_services = max_services
        self.node_jobs = frozenset(node_jobs)
        self.max_hosts = max_hosts
        #: host → the services seen on it (up to one more than ``max_services``), least recently seen first
        self.services: dict[str, tuple[str, ...]] = {}
        self._cache: dict[tuple[str, bool], list[Probe]] = {}

    @staticmethod
    @functools.lru_cache(maxsize=65536)
    def host(resource: str) -> str | None:
        if not resource:
            return None
        host = resource.rsplit(":", 1)[0] if resource.count(":") == 1 or resource.startswith("[") else resource
        if not host or host.startswith(Host.LOOPBACK):
            return None
        return host

    def is_node(self, alert: Alert) -> bool:
        return alert.service in self.node_jobs or alert.labels.get("job", "") in self.node_jobs

    def index(self, alert: Alert) -> list[str]:
        host = self.host(alert.resource)
        if host is None:
            return []
        return [f"host:{host}", f"node:{host}"] if self.is_node(alert) else [f"host:{host}"]

    def keys(self, alert: Alert) -> list[str]:
        """What ``index`` and ``probe`` use."""
        host = self.host(alert.resource)
        return [] if host is None else [f"host:{host}", f"node:{host}"]

    def probe(self, alert: Alert) -> list[Probe]:
        host = self.host(alert.resource)
        if host is None:
            return []
        services = self.services
        seen = services.pop(host, ())  # put back last: the most recently seen
        if len(seen) <= self.max_services and alert.service not in seen:
            seen = (*seen, alert.service)
        services[host] = seen
        if len(services) > self.max_hosts:
            del services[next(iter(services))]
        if len(seen) > self.max_services:
            return []
        node = self.is_node(alert)
        cached = self._cache.get((host, node))
        if cached is not None:
            return cached
        if node:
            probes = [Probe(f"host:{host}", JoinReason.SAME_HOST,
                            f"a host-level alert on {host!r}, where the incident's services run", self.LATE)]
        else:
            probes = [
                Probe(f"node:{host}", JoinReason.SAME_HOST, f"its host {host!r} has a host-level alert", self.NODE),
                Probe(f"host:{host}", JoinReason.SAME_HOST, f"same host {host!r} (possibly related)", self.SHARED),
            ]
        _remember(self._cache, (host, node), probes)
        return probes


class Mentions:
    """An alert whose label names another service (``DependencyErrors{dependency="db"}``) joins
    that service's incident: the alert says itself which dependency fails it; and an alert on a
    service that an incident's alerts name joins that incident (the culprit's own alert, late).
    Needs no graph.

    >>> from datetime import UTC, datetime
    >>> from watchkeeper.model import Severity, Status
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> a = Alert("f", "am", "DependencyErrors", "shop", "", Severity.WARNING, Status.FIRING,
    ...           {"dependency": "db"}, "x", t, t)
    >>> [(p.key, p.weight) for p in Mentions().probe(a)], Mentions().index(a)
    ([('service:db', 0.9), ('blamed:db', 0.9), ('blamed:shop', 0.9)], ['service:shop', 'blamed:db'])
    """

    name = "mentions"
    weight = 0.9
    LABELS = ("dependency", "upstream", "backend", "peer_service", "target_service", "destination_service")

    def __init__(self, labels: Iterable[str] = LABELS) -> None:
        self.labels = tuple(labels)
        self._cache: dict[tuple[str, ...], list[Probe]] = {}

    def index(self, alert: Alert) -> list[str]:
        keys = [f"service:{alert.service}"]
        for label in self.labels:
            other = alert.labels.get(label)
            if other and other != alert.service:
                keys.append(f"blamed:{other}")
        return keys

    def keys(self, alert: Alert) -> list[str]:
        """What ``index`` and ``probe`` use."""
        return [*self.index(alert), *(p.key for p in self.probe(alert))]

    def probe(self, alert: Alert) -> list[Probe]:
        labels = alert.labels
        named = tuple(label + "=" + labels[label] for label in self.labels if label in labels) \
            if any(label in labels for label in self.labels) else ()
        cached = self._cache.get((alert.service, *named))
        if cached is not None:
            return cached
        probes = []
        for label in self.labels:
            other = alert.labels.get(label)
            if other and other != alert.service:
                probes.append(Probe(f"service:{other}", JoinReason.MENTIONED,
                                    f"its label {label}={other!r} names the failing service", self.weight, other))
                probes.append(Probe(f"blamed:{other}", JoinReason.MENTIONED,
                                    f"the incident's alerts name {other!r} as their failing dependency too",
                                    self.weight, other))
        probes.append(Probe(f"blamed:{alert.service}", JoinReason.MENTIONED,
                            f"the incident's alerts name {alert.service!r} as their failing dependency", self.weight))
        _remember(self._cache, (alert.service, *named), probes)
        return probes

    def adjust(self, probe: Probe, alert: Alert, services: Iterable[str]) -> float:
        """Once the blamed service has alerts in the incident, the blame is answered: a further alert
        on it is weighed as any other alert of that service (by the labels strategy)."""
        if probe.anchor is None and alert.service in services:
            return 0.0
        return probe.weight


_MASKS = [
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b[0-9a-f]{8,}\b", re.I), "<id>"),
    (re.compile(r"\b[\w.-]*\d[\w.-]*\b"), "<*>"),  # any token holding a digit: hosts, sizes, counts
    (re.compile(r"\d+(?:\.\d+)?%"), "<*>%"),
]
_DIGIT = re.compile(r"\d")


@functools.lru_cache(maxsize=65536)
def template(text: str) -> str:
    """The masks in order, then runs of whitespace as one space. A mask that needs a digit runs only
    when one is left (every summary is new to the cache, so this runs once per alert: the masks that
    cannot match are skipped, not tried). Equal to ``template_reference`` for every text.

    >>> template("disk 91% on db-1") == template("disk 97.5% on db-22")
    True
    >>> template("connection refused from 10.0.0.7:5432")
    'connection refused from <ip>'
    """
    out = text.strip().lower()
    (ip, ip_mask), (hexid, hexid_mask), (token, token_mask), (percent, percent_mask) = _MASKS
    if _DIGIT.search(out) is None:  # the ip, token and percent masks all need a digit
        return " ".join(hexid.sub(hexid_mask, out).split())
    out = token.sub(token_mask, hexid.sub(hexid_mask, ip.sub(ip_mask, out)))
    if _DIGIT.search(out) is not None:  # the token mask leaves none, but say so in code, not in a proof
        out = percent.sub(percent_mask, out)
    return " ".join(out.split())  # str.split's whitespace is re's \s (both str.isspace)


def template_reference(text: str) -> str:
    """``template`` as the plain sequence of masks (what the tests compare it with)."""
    out = text.strip().lower()
    for pattern, mask in _MASKS:
        out = pattern.sub(mask, out)
    return re.sub(r"\s+", " ", out)


class TextTemplate:
    """Same masked summary template; with ``scope="service"`` only within one service."""

    name = "text"

    def __init__(self, scope: str = "any") -> None:
        self.scope = scope
        self._cache: dict[str, list[Probe]] = {}

    def _key(self, alert: Alert) -> str:
        prefix = f"{alert.service}|" if self.scope == "service" else ""
        return f"text:{prefix}{template(alert.summary or alert.name)}"

    def index(self, alert: Alert) -> list[str]:
        return [self._key(alert)]

    def keys(self, alert: Alert) -> list[str]:
        """What ``index`` and ``probe`` use: the one key."""
        return [self._key(alert)]

    weight = 0.5

    def probe(self, alert: Alert) -> list[Probe]:
        key = self._key(alert)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        probes = [Probe(key, JoinReason.SIMILAR_TEXT,
                        f"summary matches the template {template(alert.summary or alert.name)!r}", self.weight,
                        alert.service if self.scope == "service" else None)]
        _remember(self._cache, key, probes)
        return probes


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
    weight = 0.7

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
                      f"{alert.name!r} and {other!r} historically fire together", self.weight)
                for other in sorted(self.related.get(alert.name, ()))]
