"""Compose the observe stages: normalize → dedup → correlate → incident lifecycle.

Pure: the caller owns the :class:`State` (in memory for replay, loaded from and written back to
the database by ``storage`` for the server) and injects incident ids. Time is the event's
``received_at``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from watchkeeper.correlate import Correlator, Join, JoinReason
from watchkeeper.correlate.evidence import Footprint
from watchkeeper.correlate.feedback import transfer
from watchkeeper.correlate.pipeline_config import PipelineConfig
from watchkeeper.dedup import Deduplicator, DedupReason
from watchkeeper.dedup.fingerprint import alert_of
from watchkeeper.model import (
    Alert,
    Change,
    Event,
    HoldReason,
    Incident,
    IncidentStatus,
    Membership,
)
from watchkeeper.suppress import Silence

#: Bound once: an enum member looked up on its class costs ~0.1 µs, on the per-event path.
_REPEAT, _CLOSED = DedupReason.REPEAT, IncidentStatus.RESOLVED


@dataclass(slots=True)
class State:
    """The part of the world the pipeline reads and writes, plus what it changed."""

    alerts: dict[str, Alert] = field(default_factory=dict)
    incidents: dict[int, Incident] = field(default_factory=dict)
    active_by_key: dict[str, int] = field(default_factory=dict)
    silences: list[Silence] = field(default_factory=list)
    #: inhibition key → fingerprints of firing alerts that provide it
    inhibiting: dict[str, set[str]] = field(default_factory=dict)
    inhibit_added: set[tuple[str, str]] = field(default_factory=set)
    inhibit_removed: set[tuple[str, str]] = field(default_factory=set)
    changed_alerts: set[str] = field(default_factory=set)
    changed_incidents: set[int] = field(default_factory=set)
    #: alerts whose only change is count/last_seen, incidents whose only change is last_activity_at
    counted_alerts: set[str] = field(default_factory=set)
    touched_incidents: set[int] = field(default_factory=set)
    new_incidents: set[int] = field(default_factory=set)
    memberships: list[Membership] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    repeats: int = 0
    #: what the correlator remembers of each incident (onsets, names) for join scores; in memory
    #: only (an incident missing here is scored without onset times)
    footprints: dict[int, Footprint] = field(default_factory=dict)
    #: memberships that ended because a split moved the alert: (incident id, fingerprint)
    departures: list[tuple[int, str]] = field(default_factory=list)

    def clear_changes(self) -> None:
        self.inhibit_added.clear()
        self.inhibit_removed.clear()
        self.changed_alerts.clear()
        self.counted_alerts.clear()
        self.touched_incidents.clear()
        self.changed_incidents.clear()
        self.new_incidents.clear()
        self.memberships.clear()
        self.departures.clear()
        self.changes.clear()
        self.repeats = 0


class Pipeline:
    """Observe events one at a time.

    >>> import itertools
    >>> from datetime import UTC, datetime, timedelta
    >>> from watchkeeper.model import EventKind, Severity, Status
    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> def ev(fp, service, status=Status.FIRING, s=0):
    ...     return Event("api", EventKind.ALERT, fp, status, Severity.WARNING, "X", service, "", {},
    ...                  "x", t, None, t + timedelta(seconds=s))
    >>> state, ids = State(), itertools.count(1)
    >>> p = Pipeline(PipelineConfig(), lambda: next(ids))
    >>> for e in [ev("a", "db"), ev("b", "db", s=10), ev("c", "web", s=20)]:
    ...     p.observe(e, state)
    >>> {fp: a.incident_id for fp, a in state.alerts.items()}
    {'a': 1, 'b': 1, 'c': 2}
    >>> p.observe(ev("a", "db", Status.RESOLVED, 30), state)
    >>> p.observe(ev("b", "db", Status.RESOLVED, 40), state)
    >>> state.incidents[1].status.value, state.incidents[2].status.value
    ('resolved', 'open')
    """

    def __init__(self, config: PipelineConfig, next_incident_id: Callable[[], int]) -> None:
        self.config = config
        self.next_incident_id = next_incident_id
        self.dedup = Deduplicator()
        self.correlate = Correlator(config.window, config.strategies, config.join)

    def keys(self, events: Iterable[Event]) -> set[str]:
        """Every correlation key these events may probe or be indexed under (for loading state)."""
        found: set[str] = set()
        keys, inhibit = self.correlate.keys, self.config.inhibit
        for event in events:
            alert = alert_of(event)
            found.update(keys(alert))
            if inhibit:
                found.update(self.inhibit_keys(alert))
        return found

    def observe_all(self, events: Iterable[Event], state: State) -> None:
        observe = self.observe
        for event in events:
            observe(event, state)

    def observe(self, event: Event, state: State) -> None:
        result = self.dedup.observe(event, state.alerts)
        alert, reason, counted_only = result
        now = event.received_at
        if reason is _REPEAT and alert.held is None:  # most events: a plain repeat
            if counted_only:
                state.counted_alerts.add(alert.fingerprint)
            else:
                state.changed_alerts.add(alert.fingerprint)
            state.repeats += 1
            current = state.incidents.get(alert.incident_id) if alert.incident_id else None
            if current is not None and now > current.last_activity_at and current.status is not _CLOSED:
                current.last_activity_at = now
                state.touched_incidents.add(current.id)
            return
        if counted_only:
            state.counted_alerts.add(alert.fingerprint)
        else:
            state.changed_alerts.add(alert.fingerprint)
        if reason in (DedupReason.NEW, DedupReason.REFIRED, DedupReason.RESOLVED):
            alert.changes = [*(self.config.flapping.trim(alert.changes, now) if self.config.flapping else []), now]
            self._sources(alert, state, firing=reason is not DedupReason.RESOLVED)
        # A held alert is released by its next notification once nothing mutes it any more.
        released = reason is DedupReason.REPEAT and alert.held is not None
        if result.fires or released:
            was_held = alert.held
            if self._held(alert, state, now):
                return
            alert.held = None
            join = self.correlate.observe(alert, state.incidents, state.active_by_key, now, state.footprints)
            incident = self._join(alert, join, state, event)
            # only an alert that opened an incident or joined one on strong evidence may reveal an origin
            strong = join.incident_id is None or join.score >= self.SPLIT_BELOW
            if strong and self.config.splits and join.reason is not JoinReason.STILL_OPEN:
                others = {*join.neighbours, *state.footprints[incident.id].related} - {incident.id}
                if others:
                    self._split(alert, incident, others, state, now)
            kind = "opened" if reason is DedupReason.NEW else "refired" if result.fires else "released"
            state.changes.append(Change(
                f"alert.{kind}",
                f"alert:{alert.fingerprint}",
                now,
                {
                    "fingerprint": alert.fingerprint, "source": alert.source, "name": alert.name,
                    "service": alert.service, "severity": alert.severity.value,
                    "dedup_reason": reason.value, "incident_id": incident.id,
                    "was_held": None if was_held is None else was_held.value,
                    "join_reason": join.reason.value, "join_detail": join.detail,
                    "join_score": round(join.score, 3),
                    "possibly_related": [{"incident_id": i, "score": sc} for i, sc in join.related],
                },
            ))
        elif reason is DedupReason.RESOLVED and alert.held is not None:
            state.changes.append(Change("alert.resolved", f"alert:{alert.fingerprint}", now, {
                "fingerprint": alert.fingerprint, "incident_id": None, "was_held": alert.held.value}))
            alert.held = None  # it never counted towards an incident while held
        elif reason is DedupReason.RESOLVED:
            self._resolved(alert, state, now)
        elif reason is DedupReason.RESOLVED_UNSEEN:
            state.changes.append(Change(
                "alert.resolved_unseen", f"alert:{alert.fingerprint}", now,
                {"fingerprint": alert.fingerprint, "service": alert.service,
                 "dedup_reason": reason.value},
            ))
        else:
            state.repeats += 1
            current = state.incidents.get(alert.incident_id) if alert.incident_id else None
            if current is not None and current.is_active and now > current.last_activity_at:
                current.last_activity_at = now
                state.touched_incidents.add(current.id)

    def _sources(self, alert: Alert, state: State, *, firing: bool) -> None:
        """Keep the index of firing alerts that inhibit others up to date."""
        for rule in self.config.inhibit:
            for key in rule.source_keys(alert.labels):
                holders = state.inhibiting.setdefault(key, set())
                if firing and alert.fingerprint not in holders:
                    holders.add(alert.fingerprint)
                    state.inhibit_added.add((key, alert.fingerprint))
                    state.inhibit_removed.discard((key, alert.fingerprint))
                elif not firing and alert.fingerprint in holders:
                    holders.discard(alert.fingerprint)
                    state.inhibit_removed.add((key, alert.fingerprint))
                    state.inhibit_added.discard((key, alert.fingerprint))

    def inhibit_keys(self, alert: Alert) -> list[str]:
        return [k for rule in self.config.inhibit for k in (*rule.source_keys(alert.labels),
                                                              *rule.target_keys(alert.labels))]

    def _held(self, alert: Alert, state: State, now: datetime) -> bool:
        """Silenced, inhibited or flapping alerts are kept, audited once, and open no incident."""
        why: HoldReason | None = None
        detail = ""
        for rule in self.config.inhibit:
            for key in rule.target_keys(alert.labels):
                others = state.inhibiting.get(key, set()) - {alert.fingerprint}
                if others:
                    why = HoldReason.INHIBITED
                    detail = (f"inhibited by firing {', '.join(sorted(others)[:3])} (inhibit rule {rule.index}, "
                              f"equal: {', '.join(rule.equal) or 'none'})")
                    break
            if why:
                break
        for silence in state.silences if why is None else ():
            if silence.mutes(alert.labels, now):
                why = HoldReason.SILENCED
                detail = f"silence {silence.id} by {silence.created_by} until {silence.ends_at:%Y-%m-%d %H:%M}Z"
                if silence.comment:
                    detail += f": {silence.comment}"
                break
        if why is None and self.config.flapping is not None and self.config.flapping.flapping(alert.changes, now):
            flap = self.config.flapping
            why = HoldReason.FLAPPING
            detail = f"{len(flap.trim(alert.changes, now))} state changes within {flap.window.total_seconds():g}s"
        if why is None:
            return False
        if alert.held != why:
            state.changes.append(Change("alert.held", f"alert:{alert.fingerprint}", now, {
                "fingerprint": alert.fingerprint, "service": alert.service, "reason": why.value, "detail": detail}))
        alert.held = why
        return True

    def _join(self, alert: Alert, join: Join, state: State, event: Event) -> Incident:
        now = event.received_at
        if join.incident_id is None:
            incident = Incident(
                id=self.next_incident_id(),
                title=alert.summary or alert.name or f"alert on {alert.service}",
                status=IncidentStatus.OPEN,
                severity=alert.severity,
                services=[alert.service],
                opened_at=now,
                last_activity_at=now,
                started_at=min(event.starts_at, now),  # a source clock ahead of ours starts it on receipt
            )
            state.incidents[incident.id] = incident
            state.new_incidents.add(incident.id)
            state.changes.append(Change(
                "incident.opened", f"incident:{incident.id}", now,
                {"id": incident.id, "title": incident.title, "services": incident.services,
                 "severity": incident.severity.value, "first_alert": alert.fingerprint,
                 "reason": join.reason.value, "detail": join.detail},
            ))
        else:
            incident = state.incidents[join.incident_id]
            if join.reason is JoinReason.RETURNED and not incident.is_active:
                incident.status, incident.resolved_at = IncidentStatus.OPEN, None
                incident.acknowledged_at = incident.mitigated_at = None
                for key in incident.keys:
                    state.active_by_key[key] = incident.id
                state.changes.append(Change(
                    "incident.reopened", f"incident:{incident.id}", now,
                    {"id": incident.id, "from": "resolved", "reason": "alert_returned",
                     "fingerprint": alert.fingerprint, "detail": join.detail}))
        footprint = state.footprints.get(incident.id)
        if footprint is None:
            footprint = state.footprints[incident.id] = Footprint.of(alert, join.probes,
                                                                     self.correlate.probed(join.probes))
        elif join.reason is not JoinReason.STILL_OPEN and join.reason is not JoinReason.RETURNED:
            weak = join.score < self.SPLIT_BELOW  # a member joined on strong evidence is never split off
            footprint.add(alert, join.score, join.probes, self.correlate.probed(join.probes) if weak else None,
                          keep=weak)
        if join.related:
            footprint.related.update(i for i, _ in join.related)
        for key in self.correlate.index_keys(alert):
            state.active_by_key[key] = incident.id
            if key not in incident.keys:
                incident.keys.append(key)
        if alert.service not in incident.services:
            incident.services.append(alert.service)
        if alert.severity.rank > incident.severity.rank:
            incident.severity = alert.severity
        incident.firing_count += 1
        incident.last_activity_at = max(incident.last_activity_at, now)
        if alert.incident_id != incident.id:
            incident.alert_count += 1
            state.memberships.append(
                Membership(incident.id, alert.fingerprint, now, join.reason.value, join.detail)
            )
        alert.incident_id = incident.id
        alert.join_reason = join.reason.value
        state.changed_incidents.add(incident.id)
        return incident

    #: a member joined with at least this score is never split off; a split needs this margin; the
    #: alert that opened an incident counts as joined with ORIGIN (a symptom that fired before its cause)
    SPLIT_BELOW, SPLIT_MARGIN, ORIGIN = 0.75, 0.1, 0.6

    def _split(self, alert: Alert, target: Incident, others: set[int], state: State, now: datetime) -> None:
        """The alert just placed in ``target`` may reveal a second origin in a neighbouring incident:
        members that joined it on weak evidence and now score clearly better with ``target`` move
        there, and the audit log says ``incident.split`` with the reason and both scores."""
        policy = self.config.join
        offered: set[str] | None = None  # only a member probing one of these keys can gain
        near, reach = state.footprints.get(target.id), 2 * self.correlate.lag
        for other_id in sorted(others):
            other, footprint = state.incidents.get(other_id), state.footprints.get(other_id)
            if other is None or not other.is_active or footprint is None or not (footprint.members or footprint.origin):
                continue
            if offered is None:
                offered = set(self.correlate.index_keys(alert))
            moving: list[tuple[Alert, float, float, str]] = []
            # a member whose onset is two lags away from every onset of the target cannot score there
            candidates = [(fp, score) for fp, (score, _, onset, keys) in footprint.members.items()
                          if (near is None or near.distance(onset) < reach) and not offered.isdisjoint(keys)]
            if footprint.origin and (near is None or near.distance(footprint.first) < reach) and (
                    not offered.isdisjoint(footprint.origin_keys)):
                candidates.append((footprint.origin, self.ORIGIN))
            for fingerprint, score in candidates:
                member = state.alerts.get(fingerprint)
                if score >= self.SPLIT_BELOW or member is None or member.incident_id != other_id:
                    continue
                better, why = self.correlate.rescore(member, target.id, state.incidents, state.active_by_key, now,
                                                     state.footprints)
                if better >= policy.join and better >= score + self.SPLIT_MARGIN:
                    moving.append((member, score, better, why))
            if moving:
                self._move(other, target, moving, state, now)

    def _move(self, source: Incident, target: Incident, moving: list[tuple[Alert, float, float, str]],
              state: State, now: datetime) -> None:
        for member, score, better, why in moving:
            detail = f"split from incident {source.id} (join score {score:.2f}): {why}; join score {better:.2f}"
            transfer(member, source, target)
            member.incident_id, member.join_reason = target.id, JoinReason.SPLIT.value
            source_footprint = state.footprints[source.id]
            _, probes, _, keys = source_footprint.members.pop(member.fingerprint, (0.0, (), now, frozenset()))
            if member.fingerprint == source_footprint.origin:
                probes, keys, source_footprint.origin = source_footprint.origin_probes, source_footprint.origin_keys, ""
            target_footprint = state.footprints.get(target.id)
            if target_footprint is not None:
                target_footprint.add(member, better, probes, keys, keep=better < self.SPLIT_BELOW)
            state.memberships.append(Membership(target.id, member.fingerprint, now, JoinReason.SPLIT.value, detail))
            state.departures.append((source.id, member.fingerprint))
            state.changed_alerts.add(member.fingerprint)
        state.changed_incidents.update((source.id, target.id))
        state.changes.append(Change("incident.split", f"incident:{source.id}", now, {
            "id": source.id, "into": target.id, "reason": "second_origin",
            "detail": f"{len(moving)} alert(s) of incident {source.id} have their origin in incident {target.id}",
            "alerts": [{"fingerprint": m.fingerprint, "score_before": round(s, 3), "score_after": round(b, 3),
                        "evidence": why} for m, s, b, why in moving]}))
        if self.config.auto_resolve and source.firing_count == 0 and source.is_active:
            self._close(source, state, now, "split", "every firing alert was split off into another incident")

    def _resolved(self, alert: Alert, state: State, now: datetime) -> None:
        """The alert keeps the source's own end time; the incident uses our receipt clock, like
        ``opened_at``, so MTTR never mixes two clocks."""
        incident = state.incidents.get(alert.incident_id) if alert.incident_id else None
        payload: dict[str, object] = {"fingerprint": alert.fingerprint, "incident_id": alert.incident_id}
        state.changes.append(Change("alert.resolved", f"alert:{alert.fingerprint}", now, payload))
        if incident is None:
            return
        incident.firing_count = max(0, incident.firing_count - 1)
        incident.last_activity_at = max(incident.last_activity_at, now)
        state.changed_incidents.add(incident.id)
        if self.config.auto_resolve and incident.firing_count == 0 and incident.is_active:
            self._close(incident, state, now, "all_alerts_resolved", "every alert of the incident has resolved")

    @staticmethod
    def _close(incident: Incident, state: State, now: datetime, reason: str, detail: str) -> None:
        incident.status = IncidentStatus.RESOLVED
        incident.resolved_at = max(now, incident.opened_at)
        for key in incident.keys:
            if state.active_by_key.get(key) == incident.id:
                del state.active_by_key[key]
        state.changes.append(Change(
            "incident.resolved", f"incident:{incident.id}", now,
            {"id": incident.id, "reason": reason, "detail": detail},
        ))
