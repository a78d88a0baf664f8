"""``watchkeeper demo``: start the lab and a live Watchkeeper, inject faults one after another, and
measure what the loop does with each — shown live (Rich) or, ``--headless``, as one JSON line."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from watchkeeper.demo.closed_loop import ClosedLoop, Outcome, correlation_yaml
from watchkeeper.demo.storm import LiveServer
from watchkeeper.lab import Lab
from watchkeeper.lab.record import Recorder
from watchkeeper.lab.signals import Monitor, Scraper
from watchkeeper.service import Role, Watchkeeper
from watchkeeper.settings import Settings


@dataclass(frozen=True, slots=True)
class Timing:
    """How long each phase may take, in seconds (the defaults suit the lab on a laptop)."""

    interval: float = 2.0       # scrape and loop period
    warmup: float = 24.0        # healthy traffic the detectors learn from before the first fault
    timeout: float = 150.0      # per fault: give up waiting for detection and resolution
    settle: float = 20.0        # healthy time between two faults (detectors judge "normal" on it)


@dataclass(slots=True)
class DemoRun:
    directory: Path
    url: str = ""
    database: Path = Path()
    outcomes: list[Outcome] = field(default_factory=list)
    kpis: dict[str, Any] = field(default_factory=dict)
    audit: str = ""
    audit_ok: bool = False
    manual: bool = False

    def totals(self) -> dict[str, Any]:
        n = len(self.outcomes)
        detected = [o for o in self.outcomes if o.detected]
        resolved = [o for o in self.outcomes if o.resolved and o.mttr_s is not None]
        return {
            "faults": n,
            "detected": len(detected),
            "top1": round(sum(o.cause_correct for o in self.outcomes) / n, 3) if n else None,
            "resolved": len(resolved),
            "automated": sum(1 for o in self.outcomes if o.action is not None),
            "mean_detected_after_s": _mean([o.detected_after_s for o in detected]),
            "mean_mttr_s": _mean([o.mttr_s for o in resolved]),
            "audit_ok": self.audit_ok,
            "mode": "manual" if self.manual else "automated",
        }

    def as_json(self) -> str:
        return json.dumps({"faults": [o.summary() for o in self.outcomes], "totals": self.totals()},
                          default=str, separators=(",", ":"))


def _mean(values: Sequence[float | None]) -> float | None:
    xs = [v for v in values if v is not None]
    return round(sum(xs) / len(xs), 1) if xs else None


Show = Callable[[str, ClosedLoop | None, list[Outcome], Outcome | None], None]


def _quiet(_phase: str, _loop: ClosedLoop | None, _outcomes: list[Outcome], _current: Outcome | None) -> None:
    return None


def run(
    directory: Path, faults: Sequence[tuple[str, str]], *, approve_after: float | None = None,
    timing: Timing = Timing(), show: Show = _quiet, record: Path | None = None, manual: bool = False,
) -> DemoRun:
    """Run the lab campaign in ``directory`` (wiped first). ``show`` is called on every tick.

    ``manual``: Watchkeeper detects, correlates and ranks but runs no runbook — each fault is left for
    a person to fix with ``watchkeeper lab restart|scale|clear-tmp|rollback`` — the baseline the
    automated MTTR is compared with."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    result = DemoRun(directory, database=directory / "watchkeeper.db", manual=manual)
    lab = Lab(directory / "lab")
    show("starting the lab", None, result.outcomes, None)
    lab.up()
    try:
        topology = lab.topology()
        correlation = directory / "correlation.yaml"
        correlation.write_text(correlation_yaml(topology))
        settings = Settings(database_url=f"sqlite:///{result.database}", correlation_config=correlation,
                            runbooks_dir=None if manual else lab.runbooks_dir,
                            responder_interval_seconds=0.5)
        service = Watchkeeper(settings)
        service.upgrade()
        service.create_token(Role.APPROVER, "demo-approver", "demo")
        recorder = Recorder(record) if record is not None else None
        monitor = Monitor(Scraper.from_lab(lab.dir), recorder=recorder)
        loop = ClosedLoop(service, monitor, topology, changes=lab.changes, approve_after=approve_after)
        try:
            with LiveServer(service) as live:
                result.url = live.url
                _campaign(lab, loop, faults, timing, show, result, blind=manual)
                result.kpis = service.kpis().as_dict()
                verdict = service.verify_audit()
                result.audit, result.audit_ok = str(verdict), verdict.ok
        finally:
            service.close()
            monitor.close()
        if record is not None:
            lab.export_ground_truth(record)
    finally:
        lab.down()
    return result


def _campaign(lab: Lab, loop: ClosedLoop, faults: Sequence[tuple[str, str]], timing: Timing, show: Show,
              result: DemoRun, *, blind: bool = False) -> None:
    """Inject the faults one after another; ``blind`` keeps each fault's kind and target out of the
    phase shown (a person fixing them must find the cause the way an on-call engineer would)."""
    truth: dict[str, Any] = {}

    def wait(seconds: float, phase: str, current: Outcome | None,
             until: Callable[[list[dict[str, Any]]], bool] | None = None) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            open_incidents = loop.tick()
            if current is not None and not current.timed_out:
                record = next((f for f in lab.faults() if f["id"] == truth.get("id")), None)
                loop.observe(current, record)
            show(phase, loop, result.outcomes, current)
            if until is not None and until(open_incidents):
                return
            time.sleep(max(0.0, timing.interval - (time.monotonic() - started)))

    wait(timing.warmup, "learning normal traffic", None)
    for number, (kind, target) in enumerate(faults, 1):
        truth = lab.inject(kind, target)
        outcome = Outcome(kind, target, injected_at=_started(truth))
        result.outcomes.append(outcome)

        def resolved(_open: list[dict[str, Any]], o: Outcome = outcome) -> bool:
            return o.resolved

        phase = f"fault {number} of {len(faults)} injected" if blind else f"{kind} on {target}"
        wait(timing.timeout, phase, outcome, resolved)
        if not outcome.resolved:  # leave the lab healthy for the next fault; the outcome stays unresolved
            outcome.timed_out = True
            lab.repair(target)
        wait(timing.timeout, "waiting for every incident to close", outcome, lambda open_: not open_)
        wait(timing.settle, "settling", outcome)


def _started(truth: dict[str, Any]) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(truth["started_at"])).timestamp()
