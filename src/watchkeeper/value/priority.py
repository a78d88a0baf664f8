"""The prioritization matrix: score candidate use cases on six dimensions (the classic AIOps
matrix's High / Medium / Low rubric), weights configurable, into quick wins, strategic projects
and future consideration; data readiness measured from what Watchkeeper holds; duplicates flagged.

Every level is said the matrix's way: **high is the favourable answer** (high complexity
priority = existing tools, < 3 months; high risk priority = a proven use case with simple logic).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from watchkeeper.value.usecase import Stage, UseCase


class Dimension(StrEnum):
    BUSINESS_IMPACT = "business_impact"
    IMPLEMENTATION_COMPLEXITY = "implementation_complexity"
    DATA_READINESS = "data_readiness"
    ORGANIZATIONAL_ALIGNMENT = "organizational_alignment"
    RISK_OF_FAILURE = "risk_of_failure"
    STRATEGIC_FIT = "strategic_fit"


class Level(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def points(self) -> int:
        return {Level.HIGH: 3, Level.MEDIUM: 2, Level.LOW: 1}[self]


#: What each answer means (the rubric a scorer reads; ``watchkeeper usecases rank --rubric``).
RUBRIC: dict[Dimension, dict[Level, str]] = {
    Dimension.BUSINESS_IMPACT: {Level.HIGH: ">= 20 % MTTR reduction, direct cost savings",
                                Level.MEDIUM: "10-20 % efficiency gain, indirect savings",
                                Level.LOW: "< 10 % improvement, unclear ROI"},
    Dimension.IMPLEMENTATION_COMPLEXITY: {Level.HIGH: "leverages existing tools, < 3 months",
                                          Level.MEDIUM: "requires new integrations, 3-6 months",
                                          Level.LOW: "needs a new platform, > 6 months"},
    Dimension.DATA_READINESS: {Level.HIGH: "structured, real-time feeds available (measured: >= 75 %)",
                               Level.MEDIUM: "data exists but needs normalization (measured: >= 40 %)",
                               Level.LOW: "data collection is a prerequisite (measured: < 40 %)"},
    Dimension.ORGANIZATIONAL_ALIGNMENT: {Level.HIGH: "cross-team buy-in, executive sponsor",
                                         Level.MEDIUM: "single-team initiative, moderate support",
                                         Level.LOW: "no clear owner, cultural resistance"},
    Dimension.RISK_OF_FAILURE: {Level.HIGH: "low risk: proven use case, simple logic",
                                Level.MEDIUM: "medium: novel integration, some unknowns",
                                Level.LOW: "high risk: unproven model, complex environment"},
    Dimension.STRATEGIC_FIT: {Level.HIGH: "core to the transformation roadmap",
                              Level.MEDIUM: "aligns with departmental goals",
                              Level.LOW: "nice-to-have, exploratory"},
}


class Weights(BaseModel):
    """Relative weights of the dimensions (any positive numbers; they are normalized)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    business_impact: float = Field(0.25, ge=0, le=100)
    implementation_complexity: float = Field(0.15, ge=0, le=100)
    data_readiness: float = Field(0.20, ge=0, le=100)
    organizational_alignment: float = Field(0.15, ge=0, le=100)
    risk_of_failure: float = Field(0.10, ge=0, le=100)
    strategic_fit: float = Field(0.15, ge=0, le=100)

    @model_validator(mode="after")
    def _some(self) -> Weights:
        if sum(self.of(d) for d in Dimension) <= 0:
            raise ValueError("at least one weight must be above 0")
        return self

    def of(self, dimension: Dimension) -> float:
        return float(getattr(self, dimension.value))


class Category(StrEnum):
    QUICK_WIN = "quick_win"
    STRATEGIC_PROJECT = "strategic_project"
    FUTURE_CONSIDERATION = "future_consideration"


#: Weighted mean points (1..3) from which a use case is a quick win / a strategic project.
QUICK_WIN_FROM = 2.5
STRATEGIC_FROM = 1.8


@dataclass(frozen=True, slots=True)
class Scored:
    case_id: str
    title: str
    stage: str
    levels: dict[Dimension, Level | None]
    score: float  # 0..100
    category: Category
    missing: tuple[str, ...] = ()
    readiness: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.case_id, "title": self.title, "stage": self.stage, "score": self.score,
                "category": self.category.value, "missing": list(self.missing),
                "levels": {d.value: (lv.value if lv else None) for d, lv in self.levels.items()},
                "data_readiness": self.readiness}


def categorize(mean_points: float, impact: Level | None) -> Category:
    """
    >>> categorize(2.6, Level.HIGH).value, categorize(2.0, Level.MEDIUM).value
    ('quick_win', 'strategic_project')
    >>> categorize(1.5, Level.HIGH).value, categorize(1.5, Level.LOW).value
    ('strategic_project', 'future_consideration')
    """
    if mean_points >= QUICK_WIN_FROM:
        return Category.QUICK_WIN
    if mean_points >= STRATEGIC_FROM or impact is Level.HIGH:
        return Category.STRATEGIC_PROJECT  # a high impact is worth a harder project
    return Category.FUTURE_CONSIDERATION


def score(levels: Mapping[Dimension, Level | None], weights: Weights) -> tuple[float, float, tuple[str, ...]]:
    """Weighted mean points (1..3) as 0..100, the mean itself, and the dimensions left unanswered
    (an unanswered dimension counts as low: an unknown is not a strength).

    >>> every = {d: Level.HIGH for d in Dimension}
    >>> score(every, Weights())[:2]
    (100.0, 3.0)
    >>> score({**every, Dimension.STRATEGIC_FIT: None}, Weights())[2]
    ('strategic_fit',)
    """
    total = sum(weights.of(d) for d in Dimension)
    points = sum(weights.of(d) * (levels.get(d) or Level.LOW).points for d in Dimension) / total
    missing = tuple(d.value for d in Dimension if levels.get(d) is None)
    return round((points - 1) / 2 * 100, 1), round(points, 4), missing


# -- data readiness, measured -----------------------------------------------------------------
#: The signals each capability needs (a capability not listed needs all of them).
SIGNALS = ("alerts", "incidents", "metrics", "logs", "topology")
NEEDS: dict[str, tuple[str, ...]] = {
    "noise_reduction": ("alerts", "incidents"),
    "correlation": ("alerts", "incidents", "topology"),
    "remediation": ("alerts", "incidents", "topology"),
    "anomaly_detection": ("metrics", "incidents"),
    "forecasting": ("metrics",),
    "capacity_forecasting": ("metrics",),
    "rca": ("metrics", "topology", "incidents", "logs"),
}


def readiness(measured: Mapping[str, float], capabilities: Sequence[str]) -> tuple[Level, dict[str, Any]]:
    """Data readiness from the completeness (0..1) of each signal Watchkeeper holds for the use
    case's services, over the signals its capabilities need.

    >>> readiness({"alerts": 1.0, "incidents": 0.8}, ["noise_reduction"])[0].value
    'high'
    >>> readiness({"metrics": 0.0}, ["forecasting"])[0].value
    'low'
    """
    needed = sorted({s for c in capabilities for s in NEEDS.get(c, SIGNALS)} or set(SIGNALS))
    values = {s: round(min(1.0, max(0.0, measured.get(s, 0.0))), 4) for s in needed}
    mean = sum(values.values()) / len(values)
    level = Level.HIGH if mean >= 0.75 else Level.MEDIUM if mean >= 0.4 else Level.LOW
    return level, {"level": level.value, "completeness": round(mean, 4), "signals": values}


def rank(cases: Iterable[UseCase], weights: Weights,
         measured: Mapping[str, tuple[Level, dict[str, Any]]] | None = None) -> list[Scored]:
    """Score and rank use cases (retired ones left out), best first. ``measured`` holds the data
    readiness Watchkeeper measured per use case; a stated ``data_readiness`` is used only where
    nothing could be measured."""
    measured = measured or {}
    found = []
    for case in cases:
        if case.stage is Stage.RETIRED:
            continue
        levels: dict[Dimension, Level | None] = {
            d: Level(v) if (v := getattr(case.scores, d.value)) else None for d in Dimension}
        stated = levels[Dimension.DATA_READINESS]
        ready: dict[str, Any] = {"level": stated.value if stated else None, "source": "stated"}
        if case.id in measured:
            level, ready = measured[case.id]
            levels[Dimension.DATA_READINESS] = level
            ready = {**ready, "source": "measured"}
        value, mean, missing = score(levels, weights)
        found.append(Scored(case.id, case.title, case.stage.value, levels, value,
                            categorize(mean, levels[Dimension.BUSINESS_IMPACT]), missing, ready))
    return sorted(found, key=lambda s: (-s.score, s.case_id))


@dataclass(frozen=True, slots=True)
class Duplicate:
    first: str
    second: str
    capabilities: tuple[str, ...]
    services: tuple[str, ...]  # empty: both cover every service

    def text(self) -> str:
        where = ", ".join(self.services) if self.services else "all services"
        return f"{self.first} and {self.second} both cover {', '.join(self.capabilities)} for {where}"


def duplicates(cases: Iterable[UseCase]) -> list[Duplicate]:
    """Pairs of live use cases covering the same capability for the same services (a use case
    naming no services covers all of them).

    >>> a = UseCase(id="a", title="A", capabilities=["noise_reduction"], services=["web", "db"])
    >>> b = UseCase(id="b", title="B", capabilities=["noise_reduction"], services=["db"])
    >>> c = UseCase(id="c", title="C", capabilities=["forecasting"], services=["db"])
    >>> [d.text() for d in duplicates([a, b, c])]
    ['a and b both cover noise_reduction for db']
    """
    live = [c for c in cases if c.stage is not Stage.RETIRED]
    found = []
    for i, first in enumerate(live):
        for second in live[i + 1:]:
            shared = tuple(sorted(set(first.capabilities) & set(second.capabilities)))
            if not shared:
                continue
            if first.services and second.services:
                services = tuple(sorted(set(first.services) & set(second.services)))
                if not services:
                    continue
            else:
                services = tuple(sorted(set(first.services) | set(second.services)))
            found.append(Duplicate(first.id, second.id, shared, services))
    return found
