"""Run a runbook: steps in order, then ``verify`` retried until its deadline; on any failure the
rollback steps run. Pure orchestration: executors, clock and sleep are injected."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from watchkeeper.execute.executors import Executor, StepContext, StepResult
from watchkeeper.execute.runbook import Runbook, Step


class RunStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # a step failed and there was no rollback
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"


class Verification(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"  # no verify block, or a step failed first


@dataclass(frozen=True, slots=True)
class StepRecord:
    phase: str  # step | verify | rollback
    name: str
    ok: bool
    detail: str
    output: str
    duration_s: float
    request: dict[str, Any]
    attempts: int = 1


@dataclass(slots=True)
class Outcome:
    status: RunStatus
    verification: Verification
    records: list[StepRecord] = field(default_factory=list)
    failure: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status.value, "verification": self.verification.value, "failure": self.failure,
                "steps": [asdict(r) for r in self.records]}


def plan(runbook: Runbook, ctx: StepContext, executors: Mapping[str, Executor]) -> dict[str, Any]:
    """The rendered steps, verify and rollback, without running anything (``--dry-run``)."""
    def one(step: Step) -> dict[str, Any]:
        return {"name": step.name, "kind": step.kind, **executors[step.kind].plan(step, ctx)}

    return {
        "steps": [one(s) for s in runbook.steps],
        "verify": {**one(runbook.verify.check), "deadline_s": runbook.verify.deadline,
                   "interval_s": runbook.verify.interval} if runbook.verify else None,
        "rollback": [one(s) for s in runbook.rollback],
    }


def execute(
    runbook: Runbook, ctx: StepContext, executors: Mapping[str, Executor], *,
    sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
) -> Outcome:
    outcome = Outcome(RunStatus.SUCCEEDED, Verification.SKIPPED)
    for step in runbook.steps:
        result = executors[step.kind].run(step, ctx)
        outcome.records.append(_record("step", step, result))
        if not result.ok:
            outcome.failure = f"step {step.name!r} failed: {result.detail}"
            return _rollback(runbook, ctx, executors, outcome)
    if runbook.verify is not None:
        verify = runbook.verify
        deadline = monotonic() + verify.deadline
        attempts = 0
        while True:
            attempts += 1
            result = executors[verify.check.kind].run(verify.check, ctx)
            if result.ok or monotonic() + verify.interval > deadline:
                break
            sleep(verify.interval)
        outcome.records.append(_record("verify", verify.check, result, attempts))
        if not result.ok:
            outcome.verification = Verification.FAILED
            outcome.failure = (f"verification {verify.check.name!r} still failing after {attempts} attempts "
                               f"({verify.deadline:g}s): {result.detail}")
            return _rollback(runbook, ctx, executors, outcome)
        outcome.verification = Verification.PASSED
    return outcome


def _rollback(runbook: Runbook, ctx: StepContext, executors: Mapping[str, Executor], outcome: Outcome) -> Outcome:
    if not runbook.rollback:
        outcome.status = RunStatus.FAILED
        return outcome
    ok = True
    for step in runbook.rollback:  # every rollback step runs, even after one fails
        result = executors[step.kind].run(step, ctx)
        outcome.records.append(_record("rollback", step, result))
        ok = ok and result.ok
    outcome.status = RunStatus.ROLLED_BACK if ok else RunStatus.ROLLBACK_FAILED
    return outcome


def _record(phase: str, step: Step, result: StepResult, attempts: int = 1) -> StepRecord:
    return StepRecord(phase, step.name, result.ok, result.detail, result.output, round(result.duration_s, 3),
                      result.request, attempts)
