"""The whole loop on the local lab, fault after fault: detection → incident → ranked cause →
governed runbook → verification → resolution.

:class:`ClosedLoop` ties the pieces together and keeps no knowledge of its own: the lab's monitor
turns scraped metrics into events, :meth:`Watchkeeper.ingest_events` correlates them into incidents,
:func:`watchkeeper.rca.rank` ranks causes on the lab's topology (set through governance, which audits
them and re-decides), and the governance responder runs or asks approval for the lab's runbooks.
:func:`run_campaign` injects faults one at a time and measures each one's outcome.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from watchkeeper import rca
from watchkeeper.errors import WatchkeeperError
from watchkeeper.eval.rca import LAB_IGNORED, lab_changes
from watchkeeper.lab.record import COLUMNS
from watchkeeper.model import Cause
from watchkeeper.rca.calibration import load as load_calibration
from watchkeeper.service import Watchkeeper

#: One fault of every kind the lab knows, on a service where it makes sense, in demo order.
DEFAULT_FAULTS: tuple[tuple[str, str], ...] = (
    ("crash", "checkout"),
    ("error_burst", "catalog"),
    ("hang", "payment"),
    ("bad_deploy", "checkout"),
    ("memory_leak", "store"),
    ("disk_fill", "payment"),
    ("cpu_hog", "catalog"),
    ("dependency_outage", "catalog"),
)
#: The series the ranker reads: those a recorded campaign keeps (``eval rca --format lab`` reads the same),
#: less traffic volume, which moves with the load generator rather than with a fault.
RANKED_METRICS = frozenset(COLUMNS) - frozenset(LAB_IGNORED)
ACTOR = "watchkeeper-demo"
APPROVER = "demo-approver"
RANKER = "rca"


@dataclass(slots=True)
class Outcome:
    """What happened to one injected fault (times in seconds after the injection)."""

    fault: str
    target: str
    injected_at: float
    detected: bool = False
    detected_after_s: float | None = None
    incident: int | None = None
    top_cause: str | None = None
    confidence: float | None = None
    cause_correct: bool = False
    action: str | None = None
    mode: str | None = None
    resolved: bool = False
    mttr_s: float | None = None
    ended_by: str | None = None  # the lab's ground truth: which remediation really ended the fault
    ended_after_s: float | None = None
    timed_out: bool = False  # nothing ended it in time: the demo repaired it and stopped measuring
    approvals: list[int] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The fields ``demo --headless`` prints per fault."""
        keep = ("fault", "target", "detected", "detected_after_s", "top_cause", "cause_correct", "action",
                "resolved", "mttr_s")
        d = asdict(self)
        return {k: d[k] for k in keep} | {"confidence": self.confidence, "mode": self.mode,
                                          "incident": self.incident, "ended_by": self.ended_by,
                                          "timed_out": self.timed_out}


def parse_faults(spec: str, services: Sequence[str], kinds: Sequence[str]) -> list[tuple[str, str]]:
    """``"crash:checkout,hang"`` → ``[("crash", "checkout"), ("hang", <its default target>)]``.

    >>> parse_faults("crash:checkout, hang", ["checkout", "payment"], ["crash", "hang"])
    [('crash', 'checkout'), ('hang', 'payment')]
    """
    defaults = dict(DEFAULT_FAULTS)
    out: list[tuple[str, str]] = []
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        kind, _, target = item.partition(":")
        if kind not in kinds:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(kinds)}")
        target = target or defaults.get(kind, services[0])
        if target not in services:
            raise ValueError(f"unknown service {target!r} in {item!r}; lab services: {', '.join(services)}")
        out.append((kind, target))
    if not out:
        raise ValueError("no faults given")
    return out


def correlation_yaml(topology: Mapping[str, Any], window_s: int = 300, flap_window_s: int = 60) -> str:
    """The correlation config for the lab: a service's alerts group, and so do alerts on services
    within two hops of each other in the lab's dependency graph. The demo compresses time — a fault
    every half minute, and the front end's alerts fire and clear with each — so "flapping" is judged
    over one minute (6 state changes: firing and clearing three times), not the production default of
    4 in ten."""
    graph: dict[str, list[str]] = {}
    for caller, callee in topology["edges"]:
        graph.setdefault(caller, []).append(callee)
    lines = [f"window: {window_s}s", "flapping:", "  transitions: 6", f"  window: {flap_window_s}s",
             "strategies:", "  - type: labels", "    group_by: [service]",
             "  - type: topology", "    hops: 2", "    graph:"]
    lines += [f"      {caller}: [{', '.join(callees)}]" for caller, callees in sorted(graph.items())]
    return "\n".join(lines) + "\n"


def graph_of(topology: Mapping[str, Any]) -> nx.DiGraph:
    g: nx.DiGraph = nx.DiGraph()
    g.add_nodes_from(topology["services"])
    g.add_edges_from((a, b) for a, b in topology["edges"])
    return g


def _ts(value: Any) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value)).timestamp()


class ClosedLoop:
    """One step of the loop per :meth:`tick`; the governance responder runs in its own thread."""

    def __init__(
        self, service: Watchkeeper, monitor: Any, topology: Mapping[str, Any], *,
        changes: Callable[[], Iterable[Mapping[str, Any]]] = tuple, approve_after: float | None = None,
        rank_after: float = 2.0, clock: Callable[[], float] = time.time,
    ) -> None:
        self.service, self.monitor, self.clock = service, monitor, clock
        self.graph = graph_of(topology)
        self.changes = changes
        #: Approve a pending action nobody has answered after this many seconds (None: never).
        self.approve_after = approve_after
        self._pending_since: dict[int, float] = {}
        self._ranked: dict[int, tuple[str, ...]] = {}  # incident -> its top services as last set
        #: Seconds of evidence after an incident opens before its causes are first ranked (one more
        #: scrape: the first one after a fault shows the loudest symptom); re-ranked on every tick.
        self.rank_after = rank_after
        self.calibration = load_calibration("lab")
        self.events = 0

    # -- one step ------------------------------------------------------------------------------
    def tick(self) -> list[dict[str, Any]]:
        """Scrape, ingest, rank what changed, approve if asked to; returns the open incidents."""
        now = self.clock()
        events = self.monitor.step(now)
        if events:
            self.service.ingest_events("lab", list(events), actor="lab-monitor")
            self.events += len(events)
        open_incidents = [i for i in self.service.incidents(limit=100) if i["status"] != "resolved"]
        for incident in open_incidents:
            self._rank(incident, now)
        if self.approve_after is not None:
            self.approve_pending(now)
        return open_incidents

    def _rank(self, incident: Mapping[str, Any], now: float) -> None:
        """Rank once the incident has ``rank_after`` seconds of evidence, then again on every tick while
        it is open; governance hears of a ranking only when its top three change."""
        if now - _ts(incident["opened_at"]) < self.rank_after:
            return
        causes = self.rank(incident)
        top = tuple(c.component for c in causes[:3])
        if not causes or self._ranked.get(incident["id"]) == top:
            return
        self._ranked[incident["id"]] = top
        self.service.governance.set_causes(incident["id"], causes, RANKER)

    def rank(self, incident: Mapping[str, Any]) -> list[Cause]:
        """Rank the incident's probable causes from the monitor's series, the graph and changes."""
        starts = [_ts(a["starts_at"]) for a in incident["alerts"] if a.get("starts_at") is not None]
        onset = min(starts) if starts else _ts(incident["opened_at"])
        metrics = {
            service: {name: (np.fromiter((p[0] for p in points), float), np.fromiter((p[1] for p in points), float))
                      for name, points in series.items() if name in RANKED_METRICS}
            for service, series in self.monitor.series.items()
        }
        changes = lab_changes([dict(c) | {"at": _ts(c["at"])} for c in self.changes()], onset)
        evidence = rca.Evidence(graph=self.graph, metrics=metrics, onset=onset, changes=changes)
        return rca.rank(list(incident["services"]), evidence, calibration=self.calibration)

    def approve_pending(self, now: float) -> list[int]:
        """Stand in for the human approver on requests left unanswered for ``approve_after`` s."""
        approved = []
        for row in self.service.governance.approvals("pending"):
            first = self._pending_since.setdefault(int(row["id"]), now)
            if self.approve_after is None or now - first < self.approve_after:
                continue
            try:
                self.service.governance.vote(int(row["id"]), APPROVER, True,
                                             f"demo approver: nobody answered in {self.approve_after:g} s")
            except WatchkeeperError:  # lost a race with a human or with expiry: nothing left to approve
                continue
            approved.append(int(row["id"]))
        return approved

    def latest(self) -> dict[str, dict[str, float]]:
        """Each service's most recent derived values (for the live view)."""
        return {service: {name: points[-1][1] for name, points in series.items() if points}
                for service, series in self.monitor.series.items()}

    # -- outcome ---------------------------------------------------------------------------------
    def observe(self, outcome: Outcome, fault: Mapping[str, Any] | None = None) -> Outcome:
        """Fill ``outcome`` from the incidents opened since the injection (the first one gives the
        detection, cause and action) and from the lab's ground truth ``fault`` record: the fault
        counts as resolved only once it has really ended (``ended_at``) *and* every incident opened
        since the injection has resolved — an incident that closes while the fault goes on (its
        signals dipped) does not count. MTTR is the later of the two."""
        if fault is not None and fault.get("ended_at"):
            outcome.ended_by = str(fault.get("ended_by") or "?")
            outcome.ended_after_s = round(_ts(fault["ended_at"]) - outcome.injected_at, 1)
        mine = [i for i in self.service.incidents(limit=100) if _ts(i["opened_at"]) >= outcome.injected_at - 1]
        if not mine:
            return outcome
        incident = min(mine, key=lambda i: _ts(i["opened_at"]))
        detail = self.service.incident(incident["id"])
        outcome.detected, outcome.incident = True, incident["id"]
        outcome.detected_after_s = round(max(0.0, _ts(incident["opened_at"]) - outcome.injected_at), 1)
        if detail["causes"]:
            top = detail["causes"][0]
            outcome.top_cause, outcome.confidence = top["component"], round(float(top["confidence"]), 3)
            outcome.cause_correct = top["component"] == outcome.target
        for action in detail["actions"]:
            outcome.action = f"{action['runbook_id']}: {action['status']}"
        for decision in detail["decisions"]:
            outcome.mode = str(decision["verdict"])
        closed = [i for i in mine if i["status"] == "resolved" and i.get("resolved_at") is not None]
        ended = fault is None or outcome.ended_after_s is not None
        outcome.resolved = ended and len(closed) == len(mine)
        outcome.mttr_s = None
        if outcome.resolved:
            last = max(_ts(i["resolved_at"]) for i in closed) - outcome.injected_at
            outcome.mttr_s = round(max(last, outcome.ended_after_s or 0.0), 1)
        return outcome


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, default=str) + "\n")
