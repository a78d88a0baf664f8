"""The correlator: the alert's own active incident (or its own incident, reopened, when it fires
again soon after that resolved); else the active incident (activity within the window) with the best
join score (see :mod:`watchkeeper.correlate.evidence`) when that reaches the policy's threshold;
else a new incident, naming the incidents that scored as "possibly related"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from watchkeeper.correlate.evidence import Footprint, JoinPolicy, LearnedLags, LearnedSpread, combine, kind
from watchkeeper.correlate.strategies import JoinReason, LabelGroup, Probe, Strategy, Topology, causes, own_failure
from watchkeeper.model import Alert, Incident, IncidentStatus

#: The correlator's own version (what a configuration's parameters do not say): bumped when the join
#: logic changes what the same configuration does, so the model registry names it apart.
#: 2: a symptom service's own failure is a second origin; the onset lag is learned (LearnedSpread).
#: 3: the kind of symptom by its golden signal (``JoinPolicy.signals``).
CORRELATOR_VERSION = 3


@dataclass(frozen=True, slots=True)
class Join:
    """The correlator's answer: join ``incident_id`` (None: open a new incident)."""

    incident_id: int | None
    reason: JoinReason
    detail: str
    #: the join score (1.0 for an alert's own incident, 0.0 for a new incident)
    score: float = 1.0
    #: incidents that scored between the policy's ``possible`` and ``join`` thresholds
    related: tuple[tuple[int, float], ...] = ()
    #: every active incident any probe found (where a split may now be due)
    neighbours: tuple[int, ...] = ()
    #: what the alert probed, per strategy (a split looks only at members probing the new alert's keys)
    probes: tuple[list[Probe], ...] = ()


class Correlator:
    """Compose strategies; the first that finds an active incident within ``window`` wins.

    >>> from datetime import UTC, datetime, timedelta
    >>> from watchkeeper.model import IncidentStatus, Severity, Status
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> inc = Incident(7, "db down", IncidentStatus.OPEN, Severity.WARNING, ["db"], t, t)
    >>> alert = Alert("fp2", "api", "Slow", "db", "", Severity.WARNING, Status.FIRING, {}, "slow", t, t)
    >>> c = Correlator(timedelta(minutes=5))
    >>> c.observe(alert, {7: inc}, {"labels:service=db": 7}, t + timedelta(minutes=4)).incident_id
    7
    >>> c.observe(alert, {7: inc}, {"labels:service=db": 7}, t + timedelta(minutes=6)).reason.value
    'new_incident'
    """

    def __init__(self, window: timedelta, strategies: Sequence[Strategy] | None = None,
                 policy: JoinPolicy | None = None) -> None:
        self.window = window
        self.strategies: list[Strategy] = list(strategies) if strategies else [LabelGroup()]
        self.policy = policy or JoinPolicy()
        self._adjust = [getattr(s, "adjust", None) for s in self.strategies]
        #: each alert kind's usual lag behind the first alert on its service (in memory, as footprints)
        self.lags = LearnedLags()
        #: how fast symptoms follow their cause here (the onset lag of every join; in memory, as lags)
        self.spread = LearnedSpread()
        self._mentions = [s.name == "mentions" for s in self.strategies]
        #: the topology strategy, if any: what a service calls tells whether it is a symptom in an incident
        self._topology = next((s for s in self.strategies if isinstance(s, Topology)), None)
        #: id(probe list) → (the list, its keys): strategies keep their probe lists per service, host,
        #: template..., so the keys a split compares are collected once per list
        self._keysets: dict[int, tuple[list[Probe], frozenset[str]]] = {}

    @property
    def lag(self) -> timedelta:
        """The onset lag of a join now: the policy's, or the spread learned here (``LearnedSpread``)."""
        return self.spread.lag(self.policy.lag) if self.policy.learn_lag else self.policy.lag

    def keyset(self, probes: list[Probe]) -> frozenset[str]:
        """The keys of one strategy's probe list (cached per list object; the list is kept alive
        with its entry, so an id is never reused while cached)."""
        entry = self._keysets.get(id(probes))
        if entry is not None and entry[0] is probes:
            return entry[1]
        keys = frozenset([p.key for p in probes])
        if len(self._keysets) >= 100_000:
            self._keysets.clear()
        self._keysets[id(probes)] = (probes, keys)
        return keys

    def probed(self, probes: tuple[list[Probe], ...]) -> frozenset[str]:
        """Every key an alert probed (the union over its strategies' lists)."""
        return frozenset().union(*map(self.keyset, probes))

    def index_keys(self, alert: Alert) -> list[str]:
        return [key for s in self.strategies for key in s.index(alert)]

    def probe_keys(self, alert: Alert) -> list[str]:
        return [p.key for s in self.strategies for p in s.probe(alert)]

    def keys(self, alert: Alert) -> list[str]:
        """``index_keys`` and ``probe_keys`` together (for loading state). A strategy may offer a
        cheaper ``keys(alert)`` (no probe details to format) that returns the same keys."""
        found: list[str] = []
        for strategy in self.strategies:
            fast = getattr(strategy, "keys", None)
            if fast is not None:
                found += fast(alert)
            else:
                found += strategy.index(alert)
                found += [p.key for p in strategy.probe(alert)]
        return found

    def observe(
        self, alert: Alert, incidents: Mapping[int, Incident], active: Mapping[str, int], now: datetime,
        footprints: Mapping[int, Footprint] | None = None,
    ) -> Join:
        own = incidents.get(alert.incident_id) if alert.incident_id is not None else None
        if own is not None and own.is_active:
            return Join(own.id, JoinReason.STILL_OPEN, f"fired again while incident {own.id} was active")
        found, quiet, probes = self._evidence(alert, incidents, active, now, footprints)
        policy = self.policy
        scored = sorted(((combine(w for w, _ in ev), incident_id) for incident_id, ev in found.items()),
                        reverse=True)
        related = tuple((i, round(s, 2)) for s, i in scored if policy.possible <= s < policy.join)
        if scored and scored[0][0] >= policy.join:
            # an active incident the evidence ties it to comes first: a symptom refiring because of a
            # new fault joins that fault, not the incident it belonged to last time
            score, incident_id = scored[0]
            _, probe = max(found[incident_id], key=lambda wp: wp[0])
            gap = now - incidents[incident_id].last_activity_at
            when = f"incident {incident_id} active {_secs(gap)} ago (window {_secs(self.window)})"
            detail = f"{probe.detail}: {when}; join score {score:.2f}"
            return Join(incident_id, probe.reason, detail + _related(related, found), score, related, tuple(found),
                        probes)
        if own is not None and self.policy.reopen and now - own.last_activity_at <= self.window:
            return Join(own.id, JoinReason.RETURNED,
                        f"fired again {_secs(now - own.last_activity_at)} after incident {own.id} went quiet "
                        f"(window {_secs(self.window)}): the same fault came back; incident reopened")
        if scored:
            below = ", ".join(f"incident {i} {s:.2f}" for s, i in scored[:3])
            detail = f"no join scored {policy.join:g} or more ({below})"
            return Join(None, JoinReason.NEW_INCIDENT, detail + _related(related, found), 0.0, related, tuple(found),
                        probes)
        if quiet:
            return Join(None, JoinReason.NEW_INCIDENT, "; ".join(quiet) + f" (window {_secs(self.window)})", 0.0,
                        probes=probes)
        return Join(None, JoinReason.NEW_INCIDENT, f"no related active incident for service {alert.service!r}", 0.0,
                    probes=probes)


    def evidence(
        self, alert: Alert, incidents: Mapping[int, Incident], active: Mapping[str, int], now: datetime,
        footprints: Mapping[int, Footprint] | None = None,
    ) -> tuple[dict[int, list[tuple[float, Probe]]], list[str]]:
        """Every active incident a probe finds, with the weighed evidence for each; and the quiet ones."""
        found, quiet, _ = self._evidence(alert, incidents, active, now, footprints)
        return found, quiet

    def _evidence(
        self, alert: Alert, incidents: Mapping[int, Incident], active: Mapping[str, int], now: datetime,
        footprints: Mapping[int, Footprint] | None = None, only: int | None = None,
    ) -> tuple[dict[int, list[tuple[float, Probe]]], list[str], tuple[list[Probe], ...]]:
        found: dict[int, list[tuple[float, Probe]]] = {}
        quiet: dict[int, timedelta] = {}
        policy, window = self.policy, self.window
        lists = [(adjust, strategy.probe(alert))
                 for strategy, adjust in zip(self.strategies, self._adjust, strict=True)]
        named = any(p.anchor is not None for is_mentions, (_, ps) in zip(self._mentions, lists, strict=True)
                    if is_mentions for p in ps)
        what = kind(alert) if footprints else ""
        mentioned, service, onset = JoinReason.MENTIONED, alert.service, alert.first_seen
        get, fget = active.get, footprints.get if footprints is not None else None
        closed, bonus, elsewhere, time_factor = IncidentStatus.RESOLVED, policy.same_name_bonus, policy.elsewhere, \
            policy.time_factor
        lag = self.lag
        lead = min(policy.lead, lag)  # the cause's own alert may lag its symptoms, by less than the spread
        late = self.lags.expected(what, lag) if footprints and policy.learn_lag else None
        # an alert saying its own service failed (ServiceDown) joins that service's incident only where the
        # service is not merely a symptom of another one: else it is a second origin, possibly related
        own = footprints is not None and own_failure(alert.name)
        # the signals a cause must show for this alert to be its symptom (a caller's errors: errors or down;
        # its latency: latency); None: the name says neither, anything may cause it
        wanted = causes(alert.name) if footprints is not None and not own and policy.signals else None
        deps = self._topology.closure(service, True) if (own or wanted is not None) and self._topology is not None \
            else None
        same_service, possible = JoinReason.SAME_SERVICE, policy.possible
        first_here: datetime | None = None  # the first onset on the alert's service in an active incident
        spread_seen: timedelta | None = None  # a named culprit's symptom: its delay behind the culprit
        for adjust, probes in lists:
            for probe in probes:
                incident_id = get(probe.key)
                if incident_id is None or (only is not None and incident_id != only):
                    continue
                incident = incidents.get(incident_id)
                if incident is None or incident.status is closed:
                    continue
                gap = now - incident.last_activity_at
                if gap > window:
                    quiet[incident_id] = gap
                    continue
                weight = probe.weight if adjust is None else adjust(probe, alert, incident.services)
                footprint = fget(incident_id) if fget is not None else None
                anchor = probe.anchor
                if footprint is not None and anchor == service and (service, what) in footprint.names:
                    weight += bonus
                elif named and probe.reason is not mentioned:
                    weight *= elsewhere
                if footprint is not None:
                    gap_onset = footprint.gap(onset, anchor)
                    if late is not None and anchor in footprint.services:  # a late kind: at its usual lag
                        gap_onset = min(gap_onset, abs(onset - footprint.services[anchor][0] - timedelta(seconds=late)))
                    weight *= time_factor(gap_onset, lag)
                    if named and probe.reason is mentioned and anchor in footprint.services and only is None:
                        spread_seen = onset - footprint.services[anchor][0]
                    if anchor == service and service in footprint.services:
                        first = footprint.services[service][0]
                        first_here = first if first_here is None or first < first_here else first_here
                    if probe.after and anchor in footprint.services and (
                            footprint.services[anchor][0] - onset > lead):
                        weight = 0.0  # it started before its supposed cause did: not that cause's symptom
                    if own and anchor == service and probe.reason is same_service and weight > possible and (
                            footprint.symptom(service, deps)):
                        weight = possible
                    elif wanted is not None and weight > possible:
                        if probe.after:  # a symptom of the anchor: the anchor must show a signal that causes it
                            said = footprint.signals.get(anchor) if anchor is not None else None
                            if said and wanted.isdisjoint(said):
                                weight = possible
                        elif anchor == service and probe.reason is same_service and footprint.contradicts(
                                wanted, service) and footprint.symptom(service, deps):
                            weight = possible  # a new signal on a service there only as a symptom: a second origin
                pieces = found.get(incident_id)
                if pieces is None:
                    found[incident_id] = [(weight, probe)]
                else:
                    pieces.append((weight, probe))
        if first_here is not None and only is None and policy.learn_lag:
            self.lags.observe(what, onset - first_here)
        if spread_seen is not None and policy.learn_lag:
            self.spread.observe(spread_seen)
        return (found, [f"incident {i} quiet for {_secs(gap)}" for i, gap in quiet.items()] if quiet else [],
                tuple(probes for _, probes in lists))

    def rescore(
        self, alert: Alert, incident_id: int, incidents: Mapping[int, Incident], active: Mapping[str, int],
        now: datetime, footprints: Mapping[int, Footprint] | None = None,
    ) -> tuple[float, str]:
        """The join score ``alert`` would have with ``incident_id`` now, and its best evidence."""
        found, _, _ = self._evidence(alert, incidents, active, now, footprints, incident_id)
        pieces = found.get(incident_id)
        if not pieces:
            return 0.0, ""
        _, probe = max(pieces, key=lambda wp: wp[0])
        return combine(w for w, _ in pieces), probe.detail


def _related(related: tuple[tuple[int, float], ...], found: Mapping[int, list[tuple[float, Probe]]]) -> str:
    if not related:
        return ""
    parts = [f"incident {i} ({s:.2f}: {max(found[i], key=lambda wp: wp[0])[1].detail})" for i, s in related]
    return "; possibly related: " + "; ".join(parts)


def _secs(delta: timedelta) -> str:
    return f"{delta.total_seconds():g}s"

