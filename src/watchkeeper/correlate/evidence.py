"""The join score: how sure the correlator is that an alert shares its cause with an incident.

Every strategy's probe that finds an active incident is one piece of evidence with a weight (same
service 0.6, same host 0.7, a caller of a failing dependency 0.8, siblings 0.3, ...). Two things
change it here:

* **the alert name**: the same alert name on the same service as one already in the incident (the
  same rule firing on another replica) adds :attr:`JoinPolicy.same_name_bonus` (the name includes
  a label naming a dependency: ``DependencyErrors→db`` is not ``DependencyErrors→cache``);
* **a named culprit**: an alert whose label names the failing dependency (see
  :class:`~watchkeeper.correlate.strategies.Mentions`) is explained by that dependency; any other
  join for it keeps only :attr:`JoinPolicy.elsewhere` of its weight;
* **onset order**: a probe that says the alert is a symptom of the anchor (``Probe.after``: a caller
  of a failing dependency) counts for nothing when the alert started more than
  :attr:`JoinPolicy.lead` before the anchor's first alert;
* **the golden signal** (:attr:`JoinPolicy.signals`, in ``window.py``): a caller's errors follow a
  dependency's errors or outage, its latency a dependency's latency; a caller's symptom whose
  dependency there shows only other signals, or a new signal on a service that is only a symptom
  there, is only possibly related (:meth:`Footprint.contradicts`);
* **onset time**: a symptom starts after its cause, within a lag. The alert's onset (its source's
  ``startsAt``) is compared with the onsets of the incident's alerts on the probe's anchor service
  (or of the whole incident): within ``lag`` the weight holds, then it falls linearly to 0 at
  ``2 * lag``. Two faults in neighbouring services that start minutes apart stay apart.

The pieces for one incident do not add up (they are rarely independent: same service and a caller
of the same dependency say the same thing): an incident scores its strongest piece. The best
incident is joined when its score reaches ``join``; incidents scoring at least ``possible``
are named "possibly related" in the join's detail instead of being merged.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from watchkeeper.correlate.strategies import Mentions, Probe, own_failure, signals
from watchkeeper.model import Alert


def kind(alert: Alert) -> str:
    """The alert name, with the dependency it names if any.

    >>> from datetime import UTC, datetime
    >>> from watchkeeper.model import Severity, Status
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> kind(Alert("f", "am", "DependencyErrors", "shop", "", Severity.WARNING, Status.FIRING,
    ...            {"dependency": "db"}, "x", t, t))
    'DependencyErrors→db'
    """
    labels = alert.labels
    for label in Mentions.LABELS:
        other = labels.get(label)
        if other:
            return f"{alert.name}→{other}"
    return alert.name


@dataclass(frozen=True, slots=True)
class JoinPolicy:
    """Thresholds of the join score, and the onset lag.

    >>> JoinPolicy().time_factor(timedelta(seconds=20)), JoinPolicy().time_factor(timedelta(seconds=45))
    (1.0, 0.5)
    """

    join: float = 0.5
    possible: float = 0.25
    lag: timedelta = timedelta(seconds=30)
    same_name_bonus: float = 0.3
    #: the share of its weight a join keeps when the alert names another culprit
    elsewhere: float = 0.5
    #: an alert that fires again this soon after its incident resolved reopens it (the same fault)
    reopen: bool = True
    #: onset order: a symptom (an alert on a caller of a failing dependency) that started more than
    #: this before the dependency's first alert is not that dependency's symptom (the cause's own alert
    #: may fire a little late: a ``for: 30s`` rule against its callers' ``for: 10s``)
    lead: timedelta = timedelta(seconds=15)
    #: learn each alert kind's usual lag behind the first alert on its service (``LearnedLags``): a
    #: kind that usually starts late (an SLO burn rate over an hour) is weighed at that lag
    learn_lag: bool = True
    #: the kind of symptom by its golden signal (:func:`~watchkeeper.correlate.strategies.causes`): a
    #: caller's errors follow a dependency's errors or its being down, its latency a dependency's latency
    signals: bool = True

    def time_factor(self, gap: timedelta, lag_: timedelta | None = None) -> float:
        lag = (self.lag if lag_ is None else lag_).total_seconds()
        seconds = abs(gap.total_seconds())
        if seconds <= lag or lag <= 0:
            return 1.0
        return max(0.0, 1.0 - (seconds - lag) / lag)


@dataclass(slots=True)
class Footprint:
    """What the correlator remembers of one incident: onsets per service and the alert names."""

    first: datetime
    last: datetime
    services: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    names: set[tuple[str, str]] = field(default_factory=set)
    #: fingerprint → (join score, what it probed, onset, the keys it probed) of the alerts joined by
    #: weak evidence: the only ones a split may move (``add(..., keep=False)`` leaves a strong join out;
    #: the keys: a split looks only at members probing the new alert's keys)
    members: dict[str, tuple[float, tuple[list[Probe], ...], datetime, frozenset[str]]] = field(default_factory=dict)
    #: the alert that opened the incident (a symptom, when its cause's alert fired later), its probes
    origin: str = ""
    origin_probes: tuple[list[Probe], ...] = ()
    origin_keys: frozenset[str] = frozenset()
    #: incidents its alerts found possibly related (where a split may later be due)
    related: set[int] = field(default_factory=set)
    #: services with an alert saying they failed themselves (``ServiceDown``); per service, the
    #: dependencies its alerts name as failing
    failed: set[str] = field(default_factory=set)
    culprits: dict[str, set[str]] = field(default_factory=dict)
    #: per service, the golden signals its alerts here speak of (:func:`signals`: latency, errors, down)
    signals: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, alert: Alert, probes: tuple[list[Probe], ...] = (), keys: frozenset[str] | None = None) -> Footprint:
        onset = alert.first_seen
        footprint = cls(onset, onset, {alert.service: (onset, onset)}, {(alert.service, kind(alert))}, {},
                        alert.fingerprint, probes, _keys(probes) if keys is None else keys)
        footprint.note(alert)
        return footprint

    def note(self, alert: Alert) -> None:
        """What the alert says about its service's part: failed itself, or blames a dependency."""
        if own_failure(alert.name):
            self.failed.add(alert.service)
        said = signals(alert.name)
        if said:
            self.signals.setdefault(alert.service, set()).update(said)
        labels = alert.labels
        for label in Mentions.LABELS:
            other = labels.get(label)
            if other:
                self.culprits.setdefault(alert.service, set()).add(other)

    def symptom(self, service: str, deps: Mapping[str, int] | None = None) -> bool:
        """Whether ``service`` is in the incident only as a symptom of another service: none of its
        alerts says it failed itself, and its alerts name a failing dependency
        that is in the incident, or (``deps``: what it calls, from the topology) a dependency of it
        alerted here no later than it did. An alert saying that such a service now failed itself
        (``ServiceDown``) is a second origin, not one more symptom."""
        if service in self.failed or service not in self.services:
            return False
        services = self.services
        if any(c != service and c in services for c in self.culprits.get(service, ())):
            return True
        if deps:
            mine = services[service][0]
            return any(d in services and services[d][0] <= mine for d in deps)
        return False

    def contradicts(self, wanted: frozenset[str], service: str) -> bool:
        """Whether the other services' alerts here speak of golden signals, none of them ``wanted``
        (:func:`~watchkeeper.correlate.strategies.causes`): a latency alert on a service that is only a
        symptom of a dependency that is down is not one more of its symptoms."""
        known = False
        for other, said in self.signals.items():
            if other != service and said:
                if not wanted.isdisjoint(said):
                    return False
                known = True
        return known

    def add(self, alert: Alert, score: float, probes: tuple[list[Probe], ...] = (),
            keys: frozenset[str] | None = None, *, keep: bool = True) -> None:
        onset = alert.first_seen
        self.first, self.last = min(self.first, onset), max(self.last, onset)
        lo, hi = self.services.get(alert.service, (onset, onset))
        self.services[alert.service] = (min(lo, onset), max(hi, onset))
        self.names.add((alert.service, kind(alert)))
        self.note(alert)
        if keep:
            self.members[alert.fingerprint] = (score, probes, onset, _keys(probes) if keys is None else keys)
        else:
            self.members.pop(alert.fingerprint, None)

    def distance(self, onset: datetime) -> timedelta:
        """How far ``onset`` lies outside the incident's onsets (no anchor can be nearer)."""
        if onset < self.first:
            return self.first - onset
        return onset - self.last if onset > self.last else timedelta(0)

    def gap(self, onset: datetime, anchor: str | None) -> timedelta:
        """How far ``onset`` lies from the first onset of ``anchor``'s alerts (or of the incident):
        from the first, not the last, so that an incident cannot creep along a chain of joins."""
        first = self.services[anchor][0] if anchor in self.services else self.first
        return abs(onset - first)


class LearnedLags:
    """How long after the first alert on its service an alert of each kind usually starts, learned as
    alerts arrive: per kind (:func:`kind`), the offsets of its onsets from the first onset on the same
    service in an active incident (the last ``keep``). A kind whose median offset exceeds the policy's
    lag is a late kind (an error-budget burn rate fires a minute or more after the errors began): its
    onset is compared with the first onset plus that median, not with the first onset alone.

    >>> lags = LearnedLags()
    >>> for seconds in (80, 95, 120):
    ...     lags.observe("ErrorBudgetBurn", timedelta(seconds=seconds))
    >>> lags.expected("ErrorBudgetBurn", timedelta(seconds=30)), lags.expected("HighErrorRate", timedelta(seconds=30))
    (95.0, None)
    """

    def __init__(self, keep: int = 50, least: int = 3) -> None:
        self.keep, self.least = keep, least
        self.offsets: dict[str, deque[float]] = {}
        self._median: dict[str, float] = {}

    def observe(self, what: str, offset: timedelta) -> None:
        seen = self.offsets.get(what)
        if seen is None:
            seen = self.offsets[what] = deque(maxlen=self.keep)
        seen.append(max(0.0, offset.total_seconds()))
        n = len(seen)
        if n >= self.least:  # statistics.median, without its per-call overhead (once per alert)
            ordered = sorted(seen)
            half = n // 2
            self._median[what] = ordered[half] if n % 2 else (ordered[half - 1] + ordered[half]) / 2

    def expected(self, what: str, lag: timedelta) -> float | None:
        """The kind's usual offset in seconds when it is a late kind (beyond ``lag``), else None."""
        median = self._median.get(what)
        return median if median is not None and median > lag.total_seconds() else None


class LearnedSpread:
    """How fast symptoms follow their cause in *this* system, learned from the surest joins: an alert
    that names its failing dependency (``DependencyErrors{dependency="db"}``) joining the incident
    where that dependency alerted; its onset minus the dependency's first onset (the last ``keep``).
    Scrape and evaluation intervals, ``for:`` clauses and Alertmanager's grouping set this spread; the
    onset lag used for every other join is ``factor`` times its 90th percentile, within
    ``[floor, lag]`` (the policy's lag is the ceiling and the answer until ``least`` are seen).

    >>> spread = LearnedSpread()
    >>> for seconds in (1, 2, 2, 3, 1, 2):
    ...     spread.observe(timedelta(seconds=seconds))
    >>> spread.lag(timedelta(seconds=30)).total_seconds()
    10.0
    """

    def __init__(self, keep: int = 50, least: int = 2, factor: float = 3.0,
                 floor: timedelta = timedelta(seconds=10)) -> None:
        self.keep, self.least, self.factor, self.floor = keep, least, factor, floor
        self.offsets: deque[float] = deque(maxlen=keep)
        self._p90: float | None = None

    def observe(self, offset: timedelta) -> None:
        self.offsets.append(max(0.0, offset.total_seconds()))
        if len(self.offsets) >= self.least:
            ordered = sorted(self.offsets)
            self._p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]

    def lag(self, ceiling: timedelta) -> timedelta:
        if self._p90 is None:
            return ceiling
        return min(ceiling, max(self.floor, timedelta(seconds=self.factor * self._p90)))


def _keys(probes: tuple[list[Probe], ...]) -> frozenset[str]:
    return frozenset(p.key for ps in probes for p in ps)


def combine(weights: Iterable[float]) -> float:
    """The strongest piece of evidence, within 0..1.

    >>> combine([0.6, 0.7]), combine([1.2]), combine([])
    (0.7, 1.0, 0.0)
    """
    return min(1.0, max(weights, default=0.0))
