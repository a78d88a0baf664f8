"""The maturity assessment: pre-filled answers from measurements, levels, the phased roadmap."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from watchkeeper.value.maturity import (
    Dimension,
    Measured,
    Questionnaire,
    assess,
    default_questionnaire,
    prefill,
)

Q = default_questionnaire()


def everyone(level: int) -> dict[str, int]:
    return {q.id: level for q in Q.questions}


@pytest.mark.parametrize(("measures", "question", "level"), [
    ({"signal_coverage": 0.1}, "signal_coverage", 1),
    ({"signal_coverage": 0.9}, "signal_coverage", 5),
    ({"noise_reduction": 0.5}, "noise", 4),
    ({"runbook_autonomy": 0.0}, "runbook_autonomy", 1),  # every runbook in shadow
    ({"runbook_autonomy": 2.0}, "runbook_autonomy", 4),  # approve on average
    ({"remediation_success": 0.0}, "remediation_success", 1),
    ({"remediation_success": 0.97}, "remediation_success", 5),
    ({"use_case_governance": 1.0}, "use_case_governance", 4),
    ({"use_case_governance": 1.5}, "use_case_governance", 5),
    ({"audit": 1.0}, "audit", 5),
    ({"audit": 0.0}, "audit", 3),
])
def test_prefill(measures: dict[str, float], question: str, level: int) -> None:
    assert prefill(measures)[question].level == level


def test_nothing_measured_prefills_nothing() -> None:
    assert prefill({"noise_reduction": None, "signal_coverage": None}) == {}


def test_levels_and_the_roadmap() -> None:
    portfolio = [{"id": "noise", "capabilities": ["noise_reduction"], "stage": "pilot"},
                 {"id": "restart", "capabilities": ["remediation"], "stage": "proposed"},
                 {"id": "disk", "capabilities": ["forecasting", "remediation"], "stage": "autonomous"}]
    low = assess(Q, everyone(2), {}, portfolio)
    assert set(low.levels.values()) == {2}
    assert [(s["phase"], s["now"], s["done"]) for s in low.roadmap] == [
        ("foundational", True, False), ("advanced", False, False), ("transformational", False, False)]
    assert low.roadmap[0]["next_use_cases"] == ["noise"]
    assert low.roadmap[2]["next_use_cases"] == ["restart"]  # an autonomous one is no longer next
    middle = assess(Q, {**everyone(3), "signal_coverage": 4, "noise": 5}, {}, portfolio)
    assert middle.levels[Dimension.DATA] == 5 and middle.levels[Dimension.AUTOMATION] == 3
    assert [s["phase"] for s in middle.roadmap if s["now"]] == ["transformational"]
    top = assess(Q, everyone(5), {}, portfolio)
    assert all(s["done"] for s in top.roadmap) and top.as_dict()["names"]["skills"] == "autonomous"


def test_measured_answers_stand_unless_a_person_answers() -> None:
    measured = {"noise": Measured(5, "noise reduction 85%"), "signal_coverage": Measured(1, "signal coverage 0%")}
    partial = assess(Q, {"skills_data": 3}, measured, [])
    assert partial.answers == {"signal_coverage": 1, "noise": 5, "skills_data": 3}
    assert partial.levels[Dimension.DATA] == 3 and partial.levels[Dimension.GOVERNANCE] is None
    overridden = assess(Q, {"noise": 2}, measured, [])
    assert overridden.answers["noise"] == 2
    with pytest.raises(ValueError, match="a level is 1 to 5"):
        assess(Q, {"noise": 7}, {}, [])


def test_a_questionnaire_of_ones_own() -> None:
    one = {"id": "x", "dimension": "data", "text": "?", "answers": ["a", "b", "c", "d", "e"]}
    assert len(Questionnaire.model_validate({"questions": [one]}).questions) == 1
    for bad in ({"questions": [one, one]}, {"questions": [{**one, "answers": ["a"]}]},
                {"questions": [{**one, "dimension": "vibes"}]}, {"questions": []}):
        with pytest.raises(ValidationError):
            Questionnaire.model_validate(bad)
