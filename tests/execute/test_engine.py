"""Steps, verification retried until its deadline, rollback on failure — with scripted executors."""

from __future__ import annotations

from typing import Any

from watchkeeper.execute.engine import RunStatus, Verification, execute, plan
from watchkeeper.execute.executors import StepContext, StepResult
from watchkeeper.execute.runbook import Runbook, Step


class Scripted:
    """An executor whose results are scripted per step name."""

    kind = "command"

    def __init__(self, results: dict[str, list[bool]]) -> None:
        self.results = results
        self.calls: list[str] = []

    def run(self, step: Step, ctx: StepContext) -> StepResult:
        self.calls.append(step.name)
        outcomes = self.results.get(step.name, [True])
        ok = outcomes.pop(0) if len(outcomes) > 1 else outcomes[0]
        return StepResult(ok, "ok" if ok else "nope")

    def plan(self, step: Step, ctx: StepContext) -> dict[str, Any]:
        return {"argv": step.command.argv if step.command else []}


def runbook(rollback: bool = True) -> Runbook:
    return Runbook.model_validate({
        "id": "r", "title": "t", "selector": {}, "risk": "low", "autonomy": "auto",
        "steps": [{"name": "one", "command": {"argv": ["a"]}}, {"name": "two", "command": {"argv": ["b"]}}],
        "verify": {"check": {"name": "check", "command": {"argv": ["c"]}}, "deadline": "10s", "interval": "2s"},
        "rollback": [{"name": "undo", "command": {"argv": ["d"]}}, {"name": "undo2", "command": {"argv": ["e"]}}]
        if rollback else [],
    })


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def monotonic(self) -> float:
        return self.now


def run(results: dict[str, list[bool]], rb: Runbook | None = None) -> tuple[Any, Scripted]:
    executor, clock = Scripted(results), FakeTime()
    outcome = execute(rb or runbook(), StepContext({}, 1, "r"), {"command": executor}, sleep=clock.sleep,
                      monotonic=clock.monotonic)
    return outcome, executor


def test_success_after_verification_retries() -> None:
    outcome, ex = run({"check": [False, False, True]})
    assert (outcome.status, outcome.verification) == (RunStatus.SUCCEEDED, Verification.PASSED)
    assert ex.calls == ["one", "two", "check", "check", "check"]
    assert outcome.records[-1].attempts == 3


def test_verification_gives_up_at_the_deadline_and_rolls_back() -> None:
    outcome, ex = run({"check": [False]})
    assert (outcome.status, outcome.verification) == (RunStatus.ROLLED_BACK, Verification.FAILED)
    assert ex.calls.count("check") == 6  # t = 0, 2, 4, 6, 8, 10 (the deadline); one more would pass it
    assert ex.calls[-2:] == ["undo", "undo2"]
    assert "still failing after 6 attempts" in outcome.failure


def test_failed_step_stops_the_run_and_every_rollback_step_runs() -> None:
    outcome, ex = run({"one": [False], "undo": [False]})
    assert outcome.status is RunStatus.ROLLBACK_FAILED and outcome.verification is Verification.SKIPPED
    assert ex.calls == ["one", "undo", "undo2"]


def test_failure_without_rollback() -> None:
    outcome, _ = run({"two": [False]}, runbook(rollback=False))
    assert outcome.status is RunStatus.FAILED and outcome.failure == "step 'two' failed: nope"


def test_plan_runs_nothing() -> None:
    ex = Scripted({})
    planned = plan(runbook(), StepContext({}, 1, "r"), {"command": ex})
    assert ex.calls == [] and [s["name"] for s in planned["steps"]] == ["one", "two"]
    assert planned["verify"]["deadline_s"] == 10.0 and len(planned["rollback"]) == 2
