"""The prioritization matrix, table-driven: scores, categories, weights, measured data readiness,
duplicates."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from watchkeeper.value.priority import (
    Category,
    Dimension,
    Level,
    Weights,
    categorize,
    duplicates,
    rank,
    readiness,
    score,
)
from watchkeeper.value.usecase import Stage, UseCase

H, M, L = Level.HIGH, Level.MEDIUM, Level.LOW


def levels(impact: Level, complexity: Level, data: Level, alignment: Level, risk: Level,
           fit: Level) -> dict[Dimension, Level | None]:
    return dict(zip(Dimension, (impact, complexity, data, alignment, risk, fit), strict=True))


@pytest.mark.parametrize(("answers", "points", "category"), [
    (levels(H, H, H, H, H, H), 3.0, Category.QUICK_WIN),
    (levels(H, H, M, H, H, H), 2.8, Category.QUICK_WIN),
    (levels(H, M, M, M, H, H), 2.5, Category.QUICK_WIN),  # the edge: a quick win
    (levels(M, H, H, M, H, M), 2.45, Category.STRATEGIC_PROJECT),  # just below it
    (levels(H, L, L, M, L, H), 1.95, Category.STRATEGIC_PROJECT),  # worth it, but hard
    (levels(H, L, L, L, L, L), 1.5, Category.STRATEGIC_PROJECT),  # high impact keeps it strategic
    (levels(M, M, M, M, M, M), 2.0, Category.STRATEGIC_PROJECT),
    (levels(L, M, L, M, M, L), 1.4, Category.FUTURE_CONSIDERATION),
    (levels(L, L, L, L, L, L), 1.0, Category.FUTURE_CONSIDERATION),
])
def test_scores_and_categories(answers: dict[Dimension, Level | None], points: float, category: Category) -> None:
    value, mean, missing = score(answers, Weights())
    assert mean == pytest.approx(points) and value == pytest.approx((points - 1) / 2 * 100, abs=0.05)
    assert missing == ()
    assert categorize(mean, answers[Dimension.BUSINESS_IMPACT]) is category


def test_weights_change_the_order() -> None:
    easy = UseCase(id="easy", title="E", scores={"business_impact": "low", "implementation_complexity": "high",
                                                  "data_readiness": "high", "organizational_alignment": "high",
                                                  "risk_of_failure": "high", "strategic_fit": "low"})
    big = UseCase(id="big", title="B", scores={"business_impact": "high", "implementation_complexity": "low",
                                                "data_readiness": "low", "organizational_alignment": "high",
                                                "risk_of_failure": "low", "strategic_fit": "high"})
    assert [s.case_id for s in rank([big, easy], Weights())] == ["easy", "big"]
    impact_first = Weights(business_impact=5, strategic_fit=3)
    assert [s.case_id for s in rank([big, easy], impact_first)] == ["big", "easy"]
    with pytest.raises(ValidationError):
        Weights(business_impact=0, implementation_complexity=0, data_readiness=0, organizational_alignment=0,
                risk_of_failure=0, strategic_fit=0)
    with pytest.raises(ValidationError):
        Weights(business_impact=-1)


def test_unanswered_counts_as_low_and_measured_readiness_wins() -> None:
    case = UseCase(id="x", title="X", scores={"business_impact": "high", "data_readiness": "high"})
    [stated] = rank([case], Weights())
    assert stated.missing == ("implementation_complexity", "organizational_alignment", "risk_of_failure",
                              "strategic_fit")
    assert stated.readiness == {"level": "high", "source": "stated"}
    [measured] = rank([case], Weights(), {"x": readiness({}, ["forecasting"])})
    assert measured.levels[Dimension.DATA_READINESS] is L and measured.readiness["source"] == "measured"
    assert measured.score < stated.score
    assert rank([case.model_copy(update={"stage": Stage.RETIRED})], Weights()) == []


@pytest.mark.parametrize(("signals", "capabilities", "level", "completeness"), [
    ({"alerts": 1, "incidents": 1}, ["noise_reduction"], H, 1.0),
    ({"alerts": 1, "incidents": 0.5}, ["noise_reduction"], H, 0.75),
    ({"alerts": 1, "incidents": 0}, ["noise_reduction"], M, 0.5),
    ({"metrics": 0.3}, ["forecasting"], L, 0.3),
    ({"alerts": 1, "incidents": 1, "metrics": 1, "logs": 0, "topology": 0}, [], M, 0.6),  # no capability: all five
    ({"alerts": 7, "incidents": -1}, ["noise_reduction"], M, 0.5),  # clamped to 0..1
])
def test_measured_data_readiness(signals: dict[str, float], capabilities: list[str], level: Level,
                                 completeness: float) -> None:
    got, details = readiness(signals, capabilities)
    assert got is level and details["completeness"] == pytest.approx(completeness)


def test_duplicates() -> None:
    a = UseCase(id="a", title="A", capabilities=["noise_reduction"], services=["web", "db"])
    b = UseCase(id="b", title="B", capabilities=["noise_reduction", "rca"], services=["db", "queue"])
    everything = UseCase(id="c", title="C", capabilities=["rca"])
    retired = UseCase(id="d", title="D", capabilities=["noise_reduction"], stage=Stage.RETIRED)
    other = UseCase(id="e", title="E", capabilities=["noise_reduction"], services=["mail"])
    assert [d.text() for d in duplicates([a, b, everything, retired, other])] == [
        "a and b both cover noise_reduction for db",
        "b and c both cover rca for db, queue",
    ]
