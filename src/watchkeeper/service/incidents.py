"""Incidents: their views, human lifecycle actions and grouping corrections, silences, KPIs, audit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from watchkeeper import kpi, lifecycle
from watchkeeper.audit import Verdict, verify
from watchkeeper.correlate import feedback
from watchkeeper.errors import Conflict, InputError, NotFound
from watchkeeper.lifecycle import Action
from watchkeeper.model import Change, Incident, IncidentStatus
from watchkeeper.pipeline import Pipeline
from watchkeeper.service.core import Core, _no_ids
from watchkeeper.storage import audit, ingest, queries
from watchkeeper.storage import governance as gov_store
from watchkeeper.views import IncidentDetail, IncidentSummary, SilenceView


class Incidents(Core):
    """What a person sees of incidents and does to them."""

    def incidents(
        self, *, status: str | None = None, service: str | None = None,
        since: datetime | None = None, limit: int = 100, offset: int = 0,
    ) -> list[IncidentSummary]:
        """Incidents, newest first, each with its alerts and its three best ranked causes."""
        with self.db.read() as conn:
            found = queries.list_incidents(
                conn, status=status, service=service, since=since, limit=limit, offset=offset
            )
            members = queries.incident_alerts_of(conn, [i.id for i in found])
            causes = gov_store.top_causes_of(conn, [i.id for i in found])
        return [IncidentSummary.of(i, members[i.id], causes[i.id]) for i in found]

    def incident(self, incident_id: int) -> IncidentDetail:
        """One incident in full (:class:`~watchkeeper.views.IncidentDetail`); NotFound when there is none."""
        with self.db.read() as conn:
            found = queries.get_incident(conn, incident_id)
            members = queries.incident_alerts_of(conn, [incident_id])[incident_id]
            timeline = [
                {"seq": r.seq, "at": r.at, "actor": r.actor, "kind": r.kind, **dict(r.payload)}
                for r in audit.records(conn, subject=f"incident:{incident_id}")
            ]
            causes = gov_store.causes_of(conn, incident_id)
            decisions = gov_store.decisions_of(conn, incident_id)
            actions = gov_store.actions_of(conn, incident_id)
            changes = self.changelog.of_incident(conn, found)
        return IncidentDetail.of(found, members, causes, decisions, actions, changes, timeline)

    def act(
        self, incident_id: int, action: Action, actor: str, text: str = "", *,
        fixed_by: str | None = None, harmful: list[str] | None = None,
    ) -> IncidentDetail:
        """Apply a human lifecycle action and audit it, in one transaction. Resolving may say what
        fixed the incident (a runbook id, ``manual`` or ``nothing``) and which runbooks would have
        harmed: that scores the incident's shadow decisions."""
        now = self.clock()
        with self.db.write() as conn:
            found = queries.get_incident(conn, incident_id)
            change = lifecycle.apply(found, action, actor, now, text)
            changes = [change] if change is not None else []
            if change is not None:
                ingest.save_incident(conn, found)
            if action is Action.RESOLVE:
                changes += self.governance.score_shadow(conn, incident_id, fixed_by, harmful or [], actor)
            audit.append(conn, actor, changes)
        return self.incident(incident_id)

    # -- silences --------------------------------------------------------------------------
    def add_silence(
        self, matchers: list[str | dict[str, Any]], ends_at: datetime, actor: str, comment: str = "",
        starts_at: datetime | None = None,
    ) -> SilenceView:
        """Mute alerts matching every matcher between ``starts_at`` (default now) and ``ends_at``."""
        from watchkeeper.suppress import parse_matcher

        now = self.clock()
        starts_at = starts_at or now
        parsed = [parse_matcher(m) for m in matchers]
        if not parsed:
            raise InputError("a silence needs at least one matcher")
        if ends_at <= starts_at:
            raise InputError("a silence must end after it starts")
        with self.db.write() as conn:
            silence_id = queries.add_silence(
                conn, matchers=[str(m) for m in parsed], starts_at=starts_at, ends_at=ends_at, created_by=actor,
                comment=comment, created_at=now)
            audit.append(conn, actor, [Change("silence.created", f"silence:{silence_id}", now, {
                "id": silence_id, "matchers": [str(m) for m in parsed], "starts_at": starts_at, "ends_at": ends_at,
                "comment": comment})])
        return SilenceView(silence_id, tuple(str(m) for m in parsed), starts_at, ends_at, actor, comment, now)

    def silences(self, *, active: bool = True) -> list[SilenceView]:
        """Silences that have not ended (or all), newest first."""
        with self.db.read() as conn:
            return [SilenceView.from_row(r) for r in queries.list_silences(conn, self.clock() if active else None)]

    def expire_silence(self, silence_id: int, actor: str) -> None:
        now = self.clock()
        with self.db.write() as conn:
            if not queries.end_silence(conn, silence_id, now):
                raise NotFound(f"no active silence {silence_id}")
            audit.append(conn, actor, [Change("silence.expired", f"silence:{silence_id}", now, {"id": silence_id})])

    # -- human corrections to grouping --------------------------------------------------------
    def _move(self, conn: Any, fingerprint: str, source: Incident, target: Incident, actor: str, now: datetime,
              detail: str) -> Change:
        alert = queries.get_alert(conn, fingerprint)
        change = feedback.move(alert, source, target, actor, now, self._index_keys(alert))
        ingest.save_alert(conn, alert)
        queries.move_membership(conn, fingerprint, source.id, target.id, now, detail)
        return change

    def _index_keys(self, alert: Any) -> list[str]:
        return Pipeline(self.config, _no_ids).correlate.index_keys(alert)

    def move_alert(self, fingerprint: str, target_id: int, actor: str) -> IncidentDetail:
        """Move one alert to another incident (the correlator put it in the wrong one)."""
        now = self.clock()
        with self.db.write() as conn:
            alert = queries.get_alert(conn, fingerprint)
            if alert.incident_id is None:
                raise Conflict(f"alert {fingerprint} is not in any incident")
            source, target = queries.get_incident(conn, alert.incident_id), queries.get_incident(conn, target_id)
            change = self._move(conn, fingerprint, source, target, actor, now,
                                f"moved by {actor} from incident {source.id}")
            ingest.save_incidents(conn, [source, target])
            audit.append(conn, actor, [change])
        return self.incident(target_id)

    def merge(self, source_id: int, target_id: int, actor: str) -> IncidentDetail:
        """Merge ``source`` into ``target`` (they were one incident); ``source`` resolves."""
        now = self.clock()
        with self.db.write() as conn:
            source, target = queries.get_incident(conn, source_id), queries.get_incident(conn, target_id)
            if source_id == target_id:
                raise InputError("an incident cannot be merged into itself")
            moved = queries.member_fingerprints(conn, source_id)
            for fingerprint in moved:
                self._move(conn, fingerprint, source, target, actor, now,
                           f"merged by {actor} from incident {source_id}")
            if source.is_active:
                source.status, source.resolved_at = IncidentStatus.RESOLVED, now
            ingest.save_incidents(conn, [source, target])
            audit.append(conn, actor, [Change("incident.merged", f"incident:{target_id}", now, {
                "from": source_id, "into": target_id, "incident_id": target_id, "fingerprints": moved,
                "correction": "merged"}),
                Change("incident.resolved", f"incident:{source_id}", now, {
                    "id": source_id, "reason": "merged", "detail": f"merged into incident {target_id} by {actor}"})])
        return self.incident(target_id)

    def split(self, incident_id: int, fingerprints: list[str], actor: str) -> IncidentDetail:
        """Split ``fingerprints`` off ``incident_id`` into a new incident (they were unrelated)."""
        now = self.clock()
        with self.db.write() as conn:
            source = queries.get_incident(conn, incident_id)
            members = set(queries.member_fingerprints(conn, incident_id))
            missing = [f for f in fingerprints if f not in members]
            if not fingerprints or missing:
                raise InputError(f"alerts not in incident {incident_id}: {', '.join(missing) or '(none given)'}")
            if len(set(fingerprints)) == len(members):
                raise InputError("splitting off every alert would leave the incident empty; use merge or move")
            first = queries.get_alert(conn, fingerprints[0])
            new = Incident(id=ingest.next_incident_id(conn), title=first.summary or first.name,
                           status=IncidentStatus.OPEN, severity=first.severity, services=[first.service],
                           opened_at=now, last_activity_at=now, started_at=min(first.first_seen, now))
            ingest.insert_incident(conn, new)
            changes = [Change("incident.opened", f"incident:{new.id}", now, {
                "id": new.id, "title": new.title, "services": new.services, "severity": new.severity.value,
                "reason": "human", "detail": f"split by {actor} from incident {incident_id}"})]
            for fingerprint in dict.fromkeys(fingerprints):
                changes.append(self._move(conn, fingerprint, source, new, actor, now,
                                          f"split by {actor} from incident {incident_id}"))
            ingest.save_incidents(conn, [source, new])
            changes.append(Change("incident.split", f"incident:{incident_id}", now, {
                "id": incident_id, "incident_id": incident_id, "into": new.id, "fingerprints": fingerprints,
                "correction": "split"}))
            audit.append(conn, actor, changes)
        return self.incident(new.id)

    # -- KPIs and audit --------------------------------------------------------------------
    def kpis(self, start: datetime | None = None, end: datetime | None = None) -> kpi.KpiReport:
        with self.db.read() as conn:
            found = queries.incidents_opened_between(conn, start, end)
            events = queries.count_between(conn, "events", start, end)
            alerts = queries.count_between(conn, "alerts", start, end)
            kept = queries.count_auto_joins(conn, start, end)
            moved = queries.count_audit(conn, "alert.moved", start, end)
            merged = queries.count_audit(conn, "incident.merged", start, end)
        return kpi.report(found, events, alerts, start, end, grouping=kpi.grouping(kept, moved, merged))

    def verify_audit(self) -> Verdict:
        with self.db.read() as conn:
            return verify(audit.records(conn))

