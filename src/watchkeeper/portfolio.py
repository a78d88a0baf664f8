"""The AIOps portfolio as the API and the CLI use it: use cases stored with their versions,
stage gates evaluated from the evidence Watchkeeper holds, promotions applied by an approver who
is not the proposer, demotions applied at once — every step in the audit log, in the same
transaction as the change it records.

A use case's stage is the one place a covered runbook's autonomy is lowered from: the responder
asks :func:`watchkeeper.storage.value.autonomy` at every decision, so stage and autonomy cannot
disagree (see ``docs/value.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection

from watchkeeper.errors import AuthError, Conflict, InputError, NotFound, WatchkeeperError
from watchkeeper.execute.runbook import Catalog
from watchkeeper.model import Change
from watchkeeper.policy.approvals import identities, same_person
from watchkeeper.storage import Database, audit
from watchkeeper.storage import value as store
from watchkeeper.value.gates import GateDecision, Move, gate
from watchkeeper.value.kpis import Evidence, mean_seconds, measure_all, remediation_success
from watchkeeper.value.priority import RUBRIC, Weights, duplicates, rank, readiness
from watchkeeper.value.roi import Assumptions, Input, ItsmImport, baseline, compute, inputs_for, sensitivity
from watchkeeper.value.usecase import (
    AUTONOMY_ORDER,
    STAGE_AUTONOMY,
    Kpi,
    Stage,
    UseCase,
    autonomy_of,
    check_update,
    frozen_changes,
    pilot_problems,
)

#: Who the audit log names for what the gates do on their own (demotions).
GATE = "gate"
#: how far before its window a gate reads forecasts: a warning of a crossing in the window may start earlier
FORECAST_LOOKBACK = timedelta(days=7)


class ProposalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"  # the use case moved (or a newer proposal replaced it) before anyone decided


@dataclass(frozen=True, slots=True)
class Evaluated:
    case: UseCase
    decision: GateDecision
    window: tuple[datetime, datetime]
    proposal_id: int | None = None
    applied: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"use_case": self.case.id, **self.decision.as_dict(), "window": {
            "start": self.window[0], "end": self.window[1]}, "proposal_id": self.proposal_id, "applied": self.applied}


class Portfolio:
    def __init__(self, db: Database, clock: Callable[[], datetime], catalog: Catalog,
                 topology: Sequence[str] = ()) -> None:
        self.db = db
        self.clock = clock
        self.catalog = catalog
        self.topology = tuple(topology)  # the services the service graph knows (data readiness)

    @classmethod
    def of(cls, wk: Any) -> Portfolio:
        """The portfolio of a running service (its database, clock, runbooks and service graph)."""
        from watchkeeper.topology import config as topology_config

        cfg = wk.settings
        try:
            graph = topology_config.build(cfg.topology, topology_config.correlation_graph(cfg.correlation_config))
            nodes = [str(n) for n in graph.nodes]
        except WatchkeeperError:  # a bad topology file is reported where it is used; here it counts as none
            nodes = []
        return cls(wk.db, wk.clock, wk.governance.catalog, nodes)

    # -- maturity --------------------------------------------------------------------------
    def maturity_measures(self) -> dict[str, float | None]:
        """What the maturity questionnaire can pre-fill from Watchkeeper's data (see
        :func:`watchkeeper.value.maturity.prefill`); None where nothing is measured."""
        now = self.clock()
        month = now - timedelta(days=30)
        with self.db.read() as conn:
            services = store.seen_services(conn, now - timedelta(days=90))
            coverage = store.signal_coverage(conn, services, now, self.topology) if services else None
            alerts = store.alert_count(conn, [], month, now)
            incidents = len(store.incident_times(conn, [], month, now))
            runs = store.action_outcomes(conn, list(self.catalog.runbooks), month, now)
            cases = [UseCase.model_validate({**r["doc"], "stage": r["stage"]}) for r in store.use_case_rows(conn)]
            autonomies = [AUTONOMY_ORDER.index(autonomy_of(rb.autonomy, [s for _, s in store.stages_of(conn, rb_id)]))
                          for rb_id, rb in self.catalog.runbooks.items()]
        success = remediation_success(runs).value
        governed = sum(1 for c in cases if not pilot_problems(c)) / len(cases) if cases else None
        if governed is not None and any(c.stage.rank >= Stage.ASSISTED.rank and c.stage is not Stage.RETIRED
                                        for c in cases):
            governed = 1.5
        return {"signal_coverage": sum(coverage.values()) / len(coverage) if coverage else None,
                "noise_reduction": (1 - incidents / alerts) if alerts else None,
                "runbook_autonomy": sum(autonomies) / len(autonomies) if autonomies else None,
                "remediation_success": success, "use_case_governance": governed}

    def roadmap_cases(self) -> list[dict[str, Any]]:
        """The portfolio, best-ranked first, with the capabilities each brings (for the roadmap)."""
        with self.db.read() as conn:
            docs = {r["id"]: r["doc"] for r in store.use_case_rows(conn)}
        return [{**s, "capabilities": docs.get(s["id"], {}).get("capabilities", [])}
                for s in self.priorities()["ranked"]]

    # -- prioritization --------------------------------------------------------------------
    def priorities(self, weights: Weights | None = None) -> dict[str, Any]:
        """The ranked portfolio (quick wins, strategic projects, future consideration) with data
        readiness measured from what Watchkeeper holds, and duplicates flagged."""
        weights = weights or Weights()
        now = self.clock()
        with self.db.read() as conn:
            cases = [UseCase.model_validate({**r["doc"], "stage": r["stage"]}) for r in store.use_case_rows(conn)]
            everywhere = store.seen_services(conn, now - timedelta(days=90))
            measured = {}
            for case in cases:
                coverage = store.signal_coverage(conn, case.services or everywhere, now, self.topology)
                measured[case.id] = readiness(coverage, case.capabilities)
        ranked = rank(cases, weights, measured)
        return {"weights": weights.model_dump(), "ranked": [s.as_dict() for s in ranked],
                "duplicates": [{"use_cases": [d.first, d.second], "capabilities": list(d.capabilities),
                                "services": list(d.services), "text": d.text()} for d in duplicates(cases)],
                "rubric": {d.value: {lv.value: text for lv, text in levels.items()} for d, levels in RUBRIC.items()}}

    # -- use cases -------------------------------------------------------------------------
    def _stored(self, conn: Connection, case_id: str) -> tuple[UseCase, dict[str, Any]]:
        row = store.use_case_row(conn, case_id)
        if row is None:
            raise NotFound(f"no use case {case_id!r}; see 'watchkeeper usecases list'")
        return UseCase.model_validate({**row["doc"], "stage": row["stage"]}), row

    def _check_runbooks(self, case: UseCase) -> None:
        unknown = [r for r in case.runbooks if r not in self.catalog.runbooks]
        if unknown:
            known = ", ".join(sorted(self.catalog.runbooks)) or "none (is runbooks_dir set?)"
            raise InputError(f"use case {case.id!r} covers runbooks that do not exist: {', '.join(unknown)}; "
                             f"known: {known}")

    def apply(self, case: UseCase, actor: str, *, new_version: bool = False, reason: str = "") -> dict[str, Any]:
        """Create or update a use case. Once its pilot has started, its criteria change only as a
        new version with a reason (audited); the stage is never set from a file."""
        self._check_runbooks(case)
        now = self.clock()
        with self.db.write() as conn:
            row = store.use_case_row(conn, case.id)
            stored = UseCase.model_validate({**row["doc"], "stage": row["stage"]}) if row else None
            check_update(stored, case, new_version=new_version, reason=reason)
            if stored is None or row is None:
                store.insert_use_case(conn, case, actor, now, reason or "created")
                audit.append(conn, actor, [Change("usecase.created", f"usecase:{case.id}", now, {
                    "use_case": case.id, "version": 1, "doc": case.model_dump(mode="json")})])
            else:
                case = case.model_copy(update={"stage": stored.stage})
                changed = frozen_changes(stored, case)
                versioned = bool(changed) and (new_version or stored.stage is Stage.PROPOSED)
                version = row["version"] + 1 if versioned else row["version"]
                store.update_use_case(conn, case, version, actor, now, reason or "updated", new_version=versioned)
                kind = "usecase.versioned" if versioned and stored.stage is not Stage.PROPOSED else "usecase.updated"
                audit.append(conn, actor, [Change(kind, f"usecase:{case.id}", now, {
                    "use_case": case.id, "version": version, "changed": changed, "reason": reason,
                    "before": stored.criteria_doc() if changed else None, "doc": case.model_dump(mode="json")})])
        return self.show(case.id)

    def cases(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            rows = store.use_case_rows(conn)
        return [{"id": r["id"], "title": r["doc"].get("title"), "stage": r["stage"], "version": r["version"],
                 "stage_since": r["stage_since"], "owners": r["doc"].get("owners"),
                 "runbooks": r["doc"].get("runbooks", []), "services": r["doc"].get("services", [])} for r in rows]

    def show(self, case_id: str) -> dict[str, Any]:
        with self.db.read() as conn:
            case, row = self._stored(conn, case_id)
            runbooks = [self._runbook_view(conn, rb_id) for rb_id in case.runbooks]
            found_versions = [{k: v for k, v in r.items() if k != "use_case_id"} for r in store.versions(conn, case_id)]
            found_proposals = store.proposals(conn, case_id=case_id, limit=20)
        return {"id": case.id, "stage": case.stage.value, "version": row["version"], "stage_since": row["stage_since"],
                "pilot_started_at": row["pilot_started_at"], "updated_at": row["updated_at"],
                "updated_by": row["updated_by"], "doc": case.model_dump(mode="json"),
                "pilot_problems": pilot_problems(case), "runbooks": runbooks, "versions": found_versions,
                "proposals": found_proposals}

    def _runbook_view(self, conn: Connection, runbook_id: str) -> dict[str, Any]:
        rb = self.catalog.runbooks.get(runbook_id)
        stages = store.stages_of(conn, runbook_id)
        if rb is None:
            return {"id": runbook_id, "declared": None, "effective": None, "use_cases": dict(stages)}
        return {"id": runbook_id, "declared": rb.autonomy.value,
                "effective": autonomy_of(rb.autonomy, [s for _, s in stages]).value,
                "use_cases": {k: v.value for k, v in stages}}

    # -- gates -----------------------------------------------------------------------------
    def evidence(self, conn: Connection, case: UseCase, start: datetime, end: datetime) -> Evidence:
        base: tuple[datetime, datetime] | None = case.baseline.bounds(end) if case.baseline else None
        return Evidence(
            shadow=store.shadow_decisions(conn, case.runbooks, start, end),
            actions=store.action_outcomes(conn, case.runbooks, start, end),
            approvals=store.approval_statuses(conn, case.runbooks, start, end),
            incidents=store.incident_times(conn, case.services, start, end),
            baseline=store.incident_times(conn, case.services, *base) if base else (),
            alerts=store.alert_count(conn, case.services, start, end),
            incident_count=len(store.incident_times(conn, case.services, start, end)),
            drift_events=store.drift_count(conn, case.models, start, end),
            # a warning may start before the window: read a week earlier, count the window's crossings
            forecasts=store.forecast_events(conn, case.services, start - FORECAST_LOOKBACK, end),
            forecasts_since=start,
        )

    def _evaluate(self, conn: Connection, case: UseCase) -> tuple[GateDecision, tuple[datetime, datetime]]:
        now = self.clock()
        start, end = case.evaluation.bounds(now)
        end = min(end, now)
        measures = measure_all(self.evidence(conn, case, start, end))
        return gate(case, case.stage, measures), (start, end)

    def evaluate(self, case_id: str | None = None, *, apply: bool = False, actor: str = GATE) -> list[Evaluated]:
        """Evaluate every use case's gate (or one's). With ``apply``: promotions become proposals
        awaiting an approver; demotions are applied at once."""
        found = []
        with self.db.write() if apply else self.db.read() as conn:
            ids = [case_id] if case_id is not None else [r["id"] for r in store.use_case_rows(conn)]
            for one in ids:
                case, row = self._stored(conn, one)
                decision, window = self._evaluate(conn, case)
                proposal_id, applied = None, False
                if apply and decision.move is Move.PROMOTE:
                    proposal_id = self._propose(conn, case, row["version"], decision, actor)
                elif apply and decision.move is Move.DEMOTE:
                    self._move(conn, case, decision.to, actor, decision, proposal_id=None)
                    applied = True
                found.append(Evaluated(case, decision, window, proposal_id, applied))
        return found

    def propose(self, case_id: str, actor: str) -> dict[str, Any]:
        """Ask for a use case's next stage: a pending proposal for an approver, or an error that
        says what is missing (a pilot without owners or success criteria, criteria not met …)."""
        with self.db.write() as conn:
            case, row = self._stored(conn, case_id)
            decision, _ = self._evaluate(conn, case)
            if decision.move is not Move.PROMOTE:
                missing = "; ".join(decision.problems)
                raise Conflict(f"use case {case.id!r} cannot leave {case.stage.value}: {decision.text}"
                               + (f" ({missing})" if missing else ""))
            proposal_id = self._propose(conn, case, row["version"], decision, actor)
            found = store.proposal(conn, proposal_id)
        assert found is not None
        return found

    def guard(self) -> int:
        """Demote at once every use case in production whose criteria fail (the server runs this
        every few seconds); return how many were demoted."""
        with self.db.read() as conn:
            production = [r["id"] for r in store.use_case_rows(conn) if Stage(r["stage"]).in_production]
        demoted = 0
        for case_id in production:
            with self.db.read() as conn:  # most passes change nothing: no write lock for them
                case, _ = self._stored(conn, case_id)
                failing = self._evaluate(conn, case)[0].move is Move.DEMOTE
            if not failing:
                continue
            with self.db.write() as conn:  # evaluated again under the lock: it may have moved meanwhile
                case, _ = self._stored(conn, case_id)
                decision, _ = self._evaluate(conn, case)
                if case.stage.in_production and decision.move is Move.DEMOTE:
                    self._move(conn, case, decision.to, GATE, decision, proposal_id=None)
                    demoted += 1
        return demoted

    def _propose(self, conn: Connection, case: UseCase, version: int, decision: GateDecision, actor: str) -> int:
        now = self.clock()
        for old in store.proposals(conn, ProposalStatus.PENDING.value, case.id):
            if old["to_stage"] == decision.to.value and old["from_stage"] == case.stage.value:
                return int(old["id"])  # the same promotion already waits for an approver
            store.decide_proposal(conn, old["id"], ProposalStatus.SUPERSEDED.value, None, now, "a newer proposal")
        evaluation = decision.as_dict()
        proposal_id = store.add_proposal(
            conn, use_case_id=case.id, use_case_version=version, from_stage=case.stage.value,
            to_stage=decision.to.value, reason=decision.reason.value, evaluation=evaluation, proposed_by=actor,
            proposed_at=now, status=ProposalStatus.PENDING.value, comment="")
        audit.append(conn, actor, [Change("gate.proposed", f"usecase:{case.id}", now, {
            "proposal_id": proposal_id, "use_case": case.id, "version": version, "from": case.stage.value,
            "to": decision.to.value, "reason": decision.reason.value, "evaluation": evaluation})])
        return proposal_id

    def proposals(self, status: str | None = ProposalStatus.PENDING.value) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return store.proposals(conn, status)

    def vote(self, proposal_id: int, actor: str, approve: bool, comment: str = "") -> dict[str, Any]:
        """Approve or reject a promotion. The caller has checked the approver role; here: the
        use case's own approvers (when it names any), four-eyes, and that nothing moved since."""
        now = self.clock()
        stale, result = "", None
        with self.db.write() as conn:
            found = store.proposal(conn, proposal_id)
            if found is None:
                raise NotFound(f"no gate proposal {proposal_id}; see 'watchkeeper gates list'")
            if found["status"] != ProposalStatus.PENDING.value:
                raise Conflict(f"gate proposal {proposal_id} is already {found['status']}")
            case, row = self._stored(conn, found["use_case_id"])
            if case.approvers and not (identities(actor) & set(case.approvers)):
                raise AuthError(f"{actor} is not an approver of use case {case.id!r} (its approvers: "
                                f"{', '.join(case.approvers)})", status=403, code="insufficient_scope")
            if approve and same_person(actor, found["proposed_by"]):
                raise AuthError(f"four-eyes: {actor} proposed this promotion and cannot approve it; another "
                                "approver must", status=403, code="insufficient_scope")
            if case.stage.value != found["from_stage"] or row["version"] != found["use_case_version"]:
                # recorded (committed) before the 409: the proposal is dead whatever the caller does next
                store.decide_proposal(conn, proposal_id, ProposalStatus.SUPERSEDED.value, actor, now,
                                      "the use case changed since the proposal")
                audit.append(conn, actor, [Change("gate.superseded", f"usecase:{case.id}", now, {
                    "proposal_id": proposal_id, "use_case": case.id})])
                stale = f"(now {case.stage.value}, version {row['version']})"
            else:
                result = self._decide(conn, case, found, actor, approve, comment, now)  # may raise: nothing kept
        if stale or result is None:
            raise Conflict(f"use case {case.id!r} changed since proposal {proposal_id} {stale}: evaluate the "
                           "gate again")
        return result

    def _decide(self, conn: Connection, case: UseCase, found: dict[str, Any], actor: str, approve: bool,
                comment: str, now: datetime) -> dict[str, Any]:
        proposal_id = int(found["id"])
        status = ProposalStatus.APPROVED if approve else ProposalStatus.REJECTED
        target = Stage(found["to_stage"])
        if approve:
            self._check_ceiling(case, target)
        store.decide_proposal(conn, proposal_id, status.value, actor, now, comment)
        audit.append(conn, actor, [Change(f"gate.{status.value}", f"usecase:{case.id}", now, {
            "proposal_id": proposal_id, "use_case": case.id, "from": case.stage.value, "to": target.value,
            "proposed_by": found["proposed_by"], "comment": comment})])
        if approve:
            self._move(conn, case, target, actor, None, proposal_id=proposal_id)
        result = store.proposal(conn, proposal_id)
        assert result is not None
        return result

    def _check_ceiling(self, case: UseCase, target: Stage) -> None:
        """A stage may not promise more autonomy than a covered runbook's YAML allows: they would
        disagree. Raise the runbook's own ``autonomy`` first (a reviewed change to its file)."""
        wanted = STAGE_AUTONOMY[target]
        for rb_id in case.runbooks:
            rb = self.catalog.runbooks.get(rb_id)
            if rb is not None and AUTONOMY_ORDER.index(rb.autonomy) < AUTONOMY_ORDER.index(wanted):
                raise Conflict(f"use case {case.id!r} at {target.value} would run runbook {rb_id!r} at "
                               f"{wanted.value}, but its file caps it at {rb.autonomy.value}: raise the "
                               "runbook's autonomy first, then approve")

    def _move(self, conn: Connection, case: UseCase, target: Stage, actor: str, decision: GateDecision | None,
              *, proposal_id: int | None) -> None:
        """Change the stage and record, in the same transaction, what it does to each covered
        runbook's autonomy."""
        now = self.clock()
        before = {rb: self._runbook_view(conn, rb) for rb in case.runbooks}
        store.set_stage(conn, case.id, target, now, actor)
        after = {rb: self._runbook_view(conn, rb) for rb in case.runbooks}
        promoted = target.rank > case.stage.rank
        changes = [Change("usecase.promoted" if promoted else "usecase.demoted", f"usecase:{case.id}", now, {
            "use_case": case.id, "from": case.stage.value, "to": target.value, "proposal_id": proposal_id,
            "reason": decision.reason.value if decision else "approved",
            "failed": list(decision.problems) if decision else [],
            "evaluation": decision.as_dict() if decision else None})]
        for rb, view in after.items():
            if view["effective"] != before[rb]["effective"]:
                changes.append(Change("runbook.autonomy_changed", f"runbook:{rb}", now, {
                    "runbook_id": rb, "from": before[rb]["effective"], "to": view["effective"],
                    "declared": view["declared"], "use_case": case.id, "stage": target.value}))
        for old in store.proposals(conn, ProposalStatus.PENDING.value, case.id):
            store.decide_proposal(conn, old["id"], ProposalStatus.SUPERSEDED.value, None, now, "the stage changed")
        audit.append(conn, actor, changes)

    def effective_autonomy(self) -> dict[str, str]:
        """Each runbook's autonomy as the responder uses it (its file's, lowered by its use cases)."""
        with self.db.read() as conn:
            return {rb_id: autonomy_of(rb.autonomy, [s for _, s in store.stages_of(conn, rb_id)]).value
                    for rb_id, rb in self.catalog.runbooks.items()}

    def disagreements(self) -> list[str]:
        """Runbooks whose effective autonomy is above what a covering use case's stage allows
        (empty when stage and autonomy agree, which the design guarantees; a check for tests)."""
        problems = []
        with self.db.read() as conn:
            for rb_id, rb in self.catalog.runbooks.items():
                stages = store.stages_of(conn, rb_id)
                effective = autonomy_of(rb.autonomy, [s for _, s in stages])
                for case_id, stage in stages:
                    if AUTONOMY_ORDER.index(effective) > AUTONOMY_ORDER.index(STAGE_AUTONOMY[stage]):
                        problems.append(f"{rb_id}: {effective.value} above {case_id} at {stage.value}")
        return problems


# -- the executive report ------------------------------------------------------------------------
#: Which ROI lines a capability moves: alert triage (noise) or the time to resolve (MTTR).
TRIAGE_CAPABILITIES = frozenset({"noise_reduction", "correlation"})


def report_figures(portfolio: Portfolio, itsm: ItsmImport, source: str, assumptions: Assumptions,
                   window_days: float = 30.0) -> dict[str, Any]:
    """Everything the report shows: the ITSM baseline, the current state measured by Watchkeeper
    over the last ``window_days`` (MTTR, alerts, noise reduction — each an assumption when
    Watchkeeper has not measured it yet), the portfolio's ROI and sensitivity, and per use case
    its gate evaluation and the ROI of its own levers (costs shared evenly between use cases)."""
    base = baseline(itsm.incidents, source)
    now = portfolio.clock()
    start = now - timedelta(days=window_days)
    months = window_days / 30.4375
    with portfolio.db.read() as conn:
        current = store.incident_times(conn, [], start, now)
        alerts = store.alert_count(conn, [], start, now)
    _, n_mttr = mean_seconds(current, "mttr")
    resolved = sorted((i.resolved_at - i.opened_at).total_seconds() / 60 for i in current if i.resolved_at)
    measured_mttr = resolved[len(resolved) // 2] if resolved else None
    where = f"measured: Watchkeeper, last {window_days:g} days"
    inputs = inputs_for(
        base, assumptions,
        current_mttr_minutes=measured_mttr, current_source=f"{where}, median of {n_mttr} resolved incidents",
        alerts_per_month=alerts / months if alerts else None, alerts_source=f"{where}, {alerts} alerts",
        noise_reduction=(1 - len(current) / alerts) if alerts else None,
        noise_source=f"{where}: 1 - {len(current)} incidents / {alerts} alerts")
    total = compute(inputs, assumptions.horizon_months)
    evaluated = portfolio.evaluate()
    cases = []
    share = 1 / max(len(evaluated), 1)
    for e in evaluated:
        case_inputs, levers = _levers(e.case, inputs, share)
        roi = compute(case_inputs, assumptions.horizon_months)
        cases.append({"doc": e.case.model_dump(mode="json"), "stage": e.case.stage.value,
                      "evaluation": e.decision.as_dict(), "roi": roi,
                      "sensitivity": sensitivity(case_inputs, assumptions.horizon_months), "levers": levers})
    return {"baseline": base, "roi": total, "sensitivity": sensitivity(inputs, assumptions.horizon_months),
            "cases": cases, "priorities": portfolio.priorities()["ranked"], "skipped": itsm.skipped,
            "rows": itsm.rows, "currency": assumptions.currency}


def _levers(case: UseCase, inputs: list[Input], share: float) -> tuple[list[Input], str]:
    """The inputs of one use case: only the ROI lines its capabilities move, its own MTTR target
    when it states one, and its share of the costs."""
    triage = bool(set(case.capabilities) & TRIAGE_CAPABILITIES)
    mttr = not case.capabilities or bool(set(case.capabilities) - TRIAGE_CAPABILITIES)
    by = {i.name: i for i in inputs}
    out = dict(by)
    for name in ("platform_cost_per_month", "people_cost_per_month", "one_time_cost"):
        out[name] = replace(by[name], value=round(by[name].value * share, 2),
                            source=f"{by[name].source}, shared evenly: {share:.0%}")
    target = next((c.target for c in case.success_criteria if c.kpi is Kpi.MTTR_CHANGE and c.target < 0), None)
    if mttr and target is not None and not by["current_mttr_minutes"].source.startswith("measured"):
        value = by["baseline_mttr_minutes"].value * (1 + target)
        out["current_mttr_minutes"] = replace(by["current_mttr_minutes"], value=round(value, 2),
                                              source=f"target of use case {case.id}: MTTR {target:+.0%}")
    if not mttr:
        out["current_mttr_minutes"] = replace(by["baseline_mttr_minutes"], name="current_mttr_minutes",
                                              source=f"{case.id} does not act on resolution time")
    if not triage:
        out["noise_reduction"] = Input("noise_reduction", 0.0, "share", f"{case.id} does not reduce alert noise")
    levers = " and ".join(x for x, on in (("alert triage", triage), ("time to resolve", mttr)) if on)
    return list(out.values()), levers
