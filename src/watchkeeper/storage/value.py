"""SQL for the value work: use cases and their versions, gate proposals, the evidence a gate
measures, the model registry and drift events. The rules live in :mod:`watchkeeper.value`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, insert, select, update

from watchkeeper.policy.base import Autonomy
from watchkeeper.storage.tables import (
    action_runs,
    alerts,
    approvals,
    audit_log,
    decisions,
    detector_state,
    drift_events,
    events,
    gate_proposals,
    incident_services,
    incidents,
    models,
    use_case_versions,
    use_cases,
)
from watchkeeper.value.kpis import ActionOutcome, ForecastEvent, IncidentTimes, ShadowDecision
from watchkeeper.value.usecase import Stage, UseCase, autonomy_of


# -- use cases ------------------------------------------------------------------------------
def use_case_row(conn: Connection, case_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(use_cases).where(use_cases.c.id == case_id)).first()
    return dict(row._mapping) if row else None


def use_case_rows(conn: Connection) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(use_cases).order_by(use_cases.c.id))]


def insert_use_case(conn: Connection, case: UseCase, actor: str, at: datetime, reason: str) -> None:
    doc = case.model_dump(mode="json")
    conn.execute(insert(use_cases).values(id=case.id, version=1, stage=case.stage.value, doc=doc, stage_since=at,
                                          created_at=at, updated_at=at, updated_by=actor))
    conn.execute(insert(use_case_versions).values(use_case_id=case.id, version=1, doc=doc, at=at, actor=actor,
                                                  reason=reason))


def update_use_case(conn: Connection, case: UseCase, version: int, actor: str, at: datetime, reason: str,
                    *, new_version: bool) -> None:
    doc = case.model_dump(mode="json")
    conn.execute(update(use_cases).where(use_cases.c.id == case.id).values(
        doc=doc, version=version, updated_at=at, updated_by=actor))
    if new_version:
        conn.execute(insert(use_case_versions).values(use_case_id=case.id, version=version, doc=doc, at=at,
                                                      actor=actor, reason=reason))


def versions(conn: Connection, case_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(use_case_versions).where(use_case_versions.c.use_case_id == case_id)
                        .order_by(use_case_versions.c.version))
    return [dict(r._mapping) for r in rows]


def set_stage(conn: Connection, case_id: str, stage: Stage, at: datetime, actor: str) -> None:
    values: dict[str, Any] = {"stage": stage.value, "stage_since": at, "updated_at": at, "updated_by": actor}
    row = use_case_row(conn, case_id)
    if stage is Stage.PILOT and row is not None and row["pilot_started_at"] is None:
        values["pilot_started_at"] = at
    doc = dict(row["doc"]) if row else {}
    doc["stage"] = stage.value
    conn.execute(update(use_cases).where(use_cases.c.id == case_id).values(doc=doc, **values))


def stages_of(conn: Connection, runbook_id: str) -> list[tuple[str, Stage]]:
    """The use cases covering a runbook and their stages (a portfolio holds tens, not millions)."""
    found = []
    for row in conn.execute(select(use_cases.c.id, use_cases.c.stage, use_cases.c.doc)):
        if runbook_id in (row.doc or {}).get("runbooks", []):
            found.append((row.id, Stage(row.stage)))
    return found


def autonomy(conn: Connection, runbook_id: str, declared: Autonomy) -> Autonomy:
    """A runbook's effective autonomy: its YAML's, lowered by the stages of its use cases."""
    return autonomy_of(declared, [stage for _, stage in stages_of(conn, runbook_id)])


# -- gate proposals -------------------------------------------------------------------------
def add_proposal(conn: Connection, **values: Any) -> int:
    return int(conn.execute(insert(gate_proposals).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def proposal(conn: Connection, proposal_id: int) -> dict[str, Any] | None:
    row = conn.execute(select(gate_proposals).where(gate_proposals.c.id == proposal_id)).first()
    return dict(row._mapping) if row else None


def proposals(conn: Connection, status: str | None = None, case_id: str | None = None,
              limit: int = 200) -> list[dict[str, Any]]:
    query = select(gate_proposals).order_by(gate_proposals.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(gate_proposals.c.status == status)
    if case_id is not None:
        query = query.where(gate_proposals.c.use_case_id == case_id)
    return [dict(r._mapping) for r in conn.execute(query)]


def decide_proposal(conn: Connection, proposal_id: int, status: str, actor: str | None, at: datetime,
                    comment: str = "") -> None:
    conn.execute(update(gate_proposals).where(gate_proposals.c.id == proposal_id).values(
        status=status, decided_by=actor, decided_at=at, comment=comment))


# -- evidence -------------------------------------------------------------------------------
def shadow_decisions(conn: Connection, runbooks: Sequence[str], start: datetime, end: datetime) -> list[ShadowDecision]:
    if not runbooks:
        return []
    rows = conn.execute(select(decisions.c.runbook_id, decisions.c.at, decisions.c.outcome).where(
        decisions.c.verdict == "shadow", decisions.c.runbook_id.in_(list(runbooks)),
        decisions.c.at >= start, decisions.c.at <= end).order_by(decisions.c.id))
    return [ShadowDecision(r.runbook_id, r.at, r.outcome) for r in rows]


def action_outcomes(conn: Connection, runbooks: Sequence[str], start: datetime, end: datetime) -> list[ActionOutcome]:
    """Action runs queued in the window, each marked harmful when a human judged it so."""
    if not runbooks:
        return []
    harmed = set()
    for row in conn.execute(select(audit_log.c.payload).where(audit_log.c.kind == "action.harmful",
                                                              audit_log.c.at >= start)):
        payload = orjson.loads(row.payload)
        if isinstance(payload.get("action_id"), int):
            harmed.add(payload["action_id"])
    rows = conn.execute(select(action_runs.c.id, action_runs.c.runbook_id, action_runs.c.queued_at,
                               action_runs.c.status).where(
        action_runs.c.runbook_id.in_(list(runbooks)), action_runs.c.queued_at >= start,
        action_runs.c.queued_at <= end).order_by(action_runs.c.id))
    return [ActionOutcome(r.runbook_id, r.queued_at, r.status, r.id in harmed) for r in rows]


def approval_statuses(conn: Connection, runbooks: Sequence[str], start: datetime, end: datetime) -> list[str]:
    if not runbooks:
        return []
    rows = conn.execute(select(approvals.c.status).where(
        approvals.c.runbook_id.in_(list(runbooks)), approvals.c.requested_at >= start,
        approvals.c.requested_at <= end))
    return [r.status for r in rows]


def incident_times(conn: Connection, services: Sequence[str], start: datetime, end: datetime) -> list[IncidentTimes]:
    """Incidents opened in the window on any of the services (all incidents when none are named);
    a reopened incident keeps its first acknowledgement."""
    query = select(incidents.c.opened_at, incidents.c.first_acknowledged_at, incidents.c.acknowledged_at,
                   incidents.c.resolved_at).where(incidents.c.opened_at >= start, incidents.c.opened_at <= end)
    if services:
        ids = select(incident_services.c.incident_id).where(incident_services.c.service.in_(list(services)))
        query = query.where(incidents.c.id.in_(ids))
    return [IncidentTimes(r.opened_at, r.first_acknowledged_at or r.acknowledged_at, r.resolved_at)
            for r in conn.execute(query)]


def alert_count(conn: Connection, services: Sequence[str], start: datetime, end: datetime) -> int:
    query = select(func.count()).select_from(alerts).where(alerts.c.first_seen >= start, alerts.c.first_seen <= end)
    if services:
        query = query.where(alerts.c.service.in_(list(services)))
    return int(conn.execute(query).scalar() or 0)


def forecast_events(conn: Connection, services: Sequence[str], start: datetime, end: datetime,
                    limit: int = 100_000) -> list[ForecastEvent]:
    """Forecast events received in the window on any of the services (all when none are named)."""
    query = (select(events.c.fingerprint, events.c.received_at, events.c.status, events.c.raw)
             .where(events.c.kind == "forecast", events.c.received_at >= start, events.c.received_at <= end)
             .order_by(events.c.id).limit(limit))
    if services:
        query = query.where(events.c.service.in_(list(services)))
    found = []
    for r in conn.execute(query):
        crossing = (r.raw or {}).get("crossing_in_seconds")
        found.append(ForecastEvent(r.fingerprint, r.received_at, r.status,
                                   float(crossing) if isinstance(crossing, int | float) else None))
    return found


def drift_count(conn: Connection, names: Sequence[str], start: datetime, end: datetime) -> int:
    if not names:
        return 0
    query = select(func.count()).select_from(drift_events).where(
        drift_events.c.model.in_(list(names)), drift_events.c.at >= start, drift_events.c.at <= end)
    return int(conn.execute(query).scalar() or 0)


# -- model registry and drift ---------------------------------------------------------------
def add_model(conn: Connection, **values: Any) -> int:
    return int(conn.execute(insert(models).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def set_model_scores(conn: Connection, model_id: int, scores: dict[str, Any], params: dict[str, Any]) -> None:
    conn.execute(update(models).where(models.c.id == model_id).values(scores=scores, params=params))


def model_rows(conn: Connection, kind: str | None = None, name: str | None = None) -> list[dict[str, Any]]:
    query = select(models).order_by(models.c.kind, models.c.name, models.c.id)
    if kind is not None:
        query = query.where(models.c.kind == kind)
    if name is not None:
        query = query.where(models.c.name == name)
    return [dict(r._mapping) for r in conn.execute(query)]


def latest_models(conn: Connection) -> list[dict[str, Any]]:
    """The latest registered version of every model (kind, name), without its reference sample."""
    newest = (select(models.c.kind, models.c.name, func.max(models.c.id).label("id"))
              .group_by(models.c.kind, models.c.name).subquery())
    query = (select(models.c.kind, models.c.name, models.c.version, models.c.train_start, models.c.train_end,
                    models.c.registered_at)
             .join(newest, models.c.id == newest.c.id).order_by(models.c.kind, models.c.name))
    return [dict(r._mapping) for r in conn.execute(query)]


def model_row(conn: Connection, kind: str, name: str, version: str) -> dict[str, Any] | None:
    row = conn.execute(select(models).where(and_(models.c.kind == kind, models.c.name == name,
                                                 models.c.version == version))).first()
    return dict(row._mapping) if row else None


def add_drift(conn: Connection, **values: Any) -> int:
    return int(conn.execute(insert(drift_events).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def drift_rows(conn: Connection, model: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    query = select(drift_events).order_by(drift_events.c.id.desc()).limit(limit)
    if model is not None:
        query = query.where(drift_events.c.model == model)
    return [dict(r._mapping) for r in conn.execute(query)]


# -- data readiness -------------------------------------------------------------------------
def seen_services(conn: Connection, since: datetime) -> list[str]:
    rows = conn.execute(select(alerts.c.service).where(alerts.c.last_seen >= since).distinct())
    return sorted(str(r.service) for r in rows)


def signal_coverage(conn: Connection, services: Sequence[str], now: datetime,
                    topology: Sequence[str]) -> dict[str, float]:
    """What Watchkeeper holds for the services, each signal as a completeness 0..1: alerts and
    logs seen in the last 30 days, watched metric series, a place in the topology (each: the share
    of the services that have it), and resolved incidents of the last 90 days that carry both an
    acknowledgement and a resolution time (the history MTTA/MTTR baselines need)."""
    if not services:
        return {s: 0.0 for s in ("alerts", "incidents", "metrics", "logs", "topology")}
    month, quarter = now - timedelta(days=30), now - timedelta(days=90)
    with_alerts = {r.service for r in conn.execute(select(alerts.c.service).where(
        alerts.c.service.in_(list(services)), alerts.c.last_seen >= month).distinct())}
    with_logs = {r.service for r in conn.execute(select(events.c.service).where(
        events.c.service.in_(list(services)), events.c.kind == "log", events.c.received_at >= month).distinct())}
    keys = [str(r.key) for r in conn.execute(select(detector_state.c.key))]
    with_metrics = {s for s in services if any(f'="{s}"' in k for k in keys)}
    resolved = [i for i in incident_times(conn, services, quarter, now) if i.resolved_at is not None]
    complete = [i for i in resolved if i.acknowledged_at is not None]
    n = len(services)
    return {
        "alerts": len(with_alerts) / n,
        "incidents": (len(complete) / len(resolved)) if resolved else 0.0,
        "metrics": len(with_metrics) / n,
        "logs": len(with_logs) / n,
        "topology": len(set(services) & set(topology)) / n,
    }


def alert_times(conn: Connection, start: datetime, end: datetime, limit: int = 1_000_000) -> list[datetime]:
    rows = conn.execute(select(alerts.c.first_seen).where(alerts.c.first_seen >= start, alerts.c.first_seen < end)
                        .limit(limit))
    return [r.first_seen for r in rows]


def anomaly_times(conn: Connection, start: datetime, end: datetime, limit: int = 1_000_000) -> list[datetime]:
    rows = conn.execute(select(events.c.received_at).where(
        events.c.kind == "anomaly", events.c.status == "firing", events.c.received_at >= start,
        events.c.received_at < end).limit(limit))
    return [r.received_at for r in rows]


def latest_version(conn: Connection, kind: str, name: str) -> str | None:
    value = conn.execute(select(models.c.version).where(models.c.kind == kind, models.c.name == name)
                         .order_by(models.c.id.desc()).limit(1)).scalar()
    return str(value) if value is not None else None


def named_versions(conn: Connection, names: Sequence[tuple[str, str]]) -> dict[str, str]:
    """The latest registered version of each (kind, name) that is registered: what a decision names."""
    found = {}
    for kind, name in names:
        version = latest_version(conn, kind, name)
        if version is not None:
            found[f"{kind}:{name}"] = version
    return found
