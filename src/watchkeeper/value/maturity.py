"""The AIOps maturity assessment: a questionnaire over data, automation, governance, skills and
organisation; the answers Watchkeeper can measure are pre-filled from its own data; a level 1-5
per dimension and a phased roadmap (foundational → advanced → transformational) naming the next
use cases of the portfolio.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

LEVELS = {1: "reactive", 2: "managed", 3: "proactive", 4: "predictive", 5: "autonomous"}


class Dimension(StrEnum):
    DATA = "data"
    AUTOMATION = "automation"
    GOVERNANCE = "governance"
    SKILLS = "skills"
    ORGANISATION = "organisation"


class Question(BaseModel):
    """One question: five answers, level 1 to 5; ``measure`` names the Watchkeeper measurement
    that pre-fills it (the person may still change it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_]{1,64}$")
    dimension: Dimension
    text: str = Field(min_length=1, max_length=500)
    answers: list[str] = Field(min_length=5, max_length=5, description="what level 1, 2, 3, 4 and 5 look like")
    measure: str | None = Field(None, max_length=64)


class Questionnaire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    questions: list[Question] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _unique(self) -> Questionnaire:
        ids = [q.id for q in self.questions]
        if len(ids) != len(set(ids)):
            raise ValueError("question ids repeat")
        return self


DEFAULT = """
questions:
  - id: signal_coverage
    dimension: data
    text: How much of what your services emit (alerts, metrics, logs, topology, incident history) reaches one place?
    measure: signal_coverage
    answers:
      - scattered in tool silos
      - alerts only
      - alerts and metrics
      - alerts, metrics and topology
      - every signal with history
  - id: noise
    dimension: data
    text: How many alerts does a person see per real problem?
    measure: noise_reduction
    answers:
      - every alert pages
      - some deduplication
      - grouped by rules (< 50 % fewer pages)
      - correlated (50-80 % fewer)
      - '> 80 % fewer, learned'
  - id: runbook_autonomy
    dimension: automation
    text: How are fixes for known problems run?
    measure: runbook_autonomy
    answers:
      - by hand from memory
      - written runbooks run by hand
      - runbooks proposed by the tool
      - runbooks run after approval
      - runbooks run unattended within policy
  - id: remediation_success
    dimension: automation
    text: How often does an automated fix work?
    measure: remediation_success
    answers:
      - no automated fixes
      - < 50 %
      - 50-80 %
      - 80-95 %
      - '> 95 %'
  - id: use_case_governance
    dimension: governance
    text: How are AIOps use cases chosen and scaled?
    measure: use_case_governance
    answers:
      - ad hoc
      - a list of ideas
      - owners named
      - owners and success criteria fixed before pilots
      - stage gates on measured evidence
  - id: audit
    dimension: governance
    text: Can you show who or what decided each automated action?
    measure: audit
    answers:
      - "no"
      - tool logs
      - a central log
      - an audit log per decision
      - a tamper-evident audit log that verifies
  - id: skills_data
    dimension: skills
    text: Who in operations can read and question a model's output?
    answers:
      - nobody
      - one enthusiast
      - a few engineers
      - each on-call rotation
      - every engineer and lead
  - id: skills_runbooks
    dimension: skills
    text: Who writes and reviews automation?
    answers:
      - nobody
      - one person
      - the platform team
      - each service team
      - every team, with reviews and tests
  - id: sponsorship
    dimension: organisation
    text: Who sponsors the AIOps programme?
    answers:
      - nobody
      - a team lead
      - a department head
      - the CIO
      - the CIO, with business owners per use case
  - id: culture
    dimension: organisation
    text: How do teams respond to automation taking actions?
    answers:
      - resistance
      - tolerance
      - cautious trust in shadow mode
      - trust with approvals
      - trust earned by measured evidence
"""


def default_questionnaire() -> Questionnaire:
    return Questionnaire.model_validate(yaml.safe_load(DEFAULT))


def level_of(value: float, edges: Sequence[float]) -> int:
    """1 + how many of the four rising ``edges`` the value reaches.

    >>> level_of(0.0, (0.2, 0.4, 0.6, 0.8)), level_of(0.6, (0.2, 0.4, 0.6, 0.8)), level_of(1, (0.2, 0.4, 0.6, 0.8))
    (1, 4, 5)
    """
    return 1 + sum(value >= e for e in edges)


@dataclass(frozen=True, slots=True)
class Measured:
    """A pre-filled answer: the level and what it was read from."""

    level: int
    evidence: str


def prefill(measures: Mapping[str, float | None]) -> dict[str, Measured]:
    """Levels from Watchkeeper's measurements (a missing measurement pre-fills nothing).

    ``signal_coverage`` (0..1), ``noise_reduction`` (0..1), ``runbook_autonomy`` (0..3: the mean
    effective autonomy, shadow 0 … auto 3), ``remediation_success`` (0..1), ``use_case_governance``
    (0..1: the share of use cases with owners and success criteria, 1.5 when some passed a gate on
    evidence), ``audit`` (1 when the chain verifies).

    >>> prefill({"noise_reduction": 0.85, "audit": 1.0})["noise"]
    Measured(level=5, evidence='noise reduction 85%')
    """
    found: dict[str, Measured] = {}
    if (v := measures.get("signal_coverage")) is not None:
        found["signal_coverage"] = Measured(level_of(v, (0.2, 0.4, 0.6, 0.85)), f"signal coverage {v:.0%}")
    if (v := measures.get("noise_reduction")) is not None:
        found["noise"] = Measured(level_of(v, (0.1, 0.3, 0.5, 0.8)), f"noise reduction {v:.0%}")
    if (v := measures.get("runbook_autonomy")) is not None:
        found["runbook_autonomy"] = Measured(level_of(v, (0.5, 1.0, 2.0, 2.75)),
                                             f"mean runbook autonomy {v:.2f} (shadow 0, suggest 1, approve 2, auto 3)")
    if (v := measures.get("remediation_success")) is not None:
        found["remediation_success"] = Measured(level_of(v, (0.01, 0.5, 0.8, 0.95)),
                                                f"remediation success {v:.0%}")
    if (v := measures.get("use_case_governance")) is not None:
        found["use_case_governance"] = Measured(level_of(v, (0.01, 0.5, 1.0, 1.5)),
                                                "use cases with owners and criteria" + (
                                                    ", some promoted on evidence" if v >= 1.5 else f": {v:.0%}"))
    if (v := measures.get("audit")) is not None:
        found["audit"] = Measured(5 if v >= 1 else 3, "the audit chain verifies" if v >= 1 else "the audit chain "
                                  "does not verify")
    return found


@dataclass(frozen=True, slots=True)
class Assessment:
    levels: dict[Dimension, int | None]
    answers: dict[str, int]
    measured: dict[str, Measured]
    roadmap: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        return {"levels": {d.value: lv for d, lv in self.levels.items()},
                "names": {d.value: LEVELS[lv] if lv else None for d, lv in self.levels.items()},
                "answers": self.answers, "measured": {k: {"level": m.level, "evidence": m.evidence}
                                                      for k, m in self.measured.items()},
                "roadmap": self.roadmap}


#: The phases and the capabilities each brings.
PHASES = (
    ("foundational", "unify the data, cut the noise", ("noise_reduction", "correlation")),
    ("advanced", "predict and explain: forecasting, anomaly detection, root cause",
     ("forecasting", "capacity_forecasting", "anomaly_detection", "rca")),
    ("transformational", "close the loop: governed self-healing", ("remediation",)),
)


def assess(questionnaire: Questionnaire, answers: Mapping[str, int], measured: Mapping[str, Measured],
           portfolio: Sequence[Mapping[str, Any]]) -> Assessment:
    """Levels per dimension (the mean of its answers, rounded half up; a measured answer stands
    unless the person gave one) and the roadmap: the phase to work on first is the earliest whose
    dimensions are below 3 — data for foundational, automation for the later ones — and each phase
    names the portfolio's use cases (best-ranked first) that bring its capabilities.

    >>> q = default_questionnaire()
    >>> a = assess(q, {x.id: 2 for x in q.questions}, {}, [])
    >>> a.levels[Dimension.DATA], a.roadmap[0]["phase"], a.roadmap[0]["now"]
    (2, 'foundational', True)
    """
    given = {q.id: answers[q.id] for q in questionnaire.questions if q.id in answers}
    for qid, level in given.items():
        if not 1 <= int(level) <= 5:
            raise ValueError(f"{qid}: a level is 1 to 5, not {level}")
    final = {q.id: int(given.get(q.id) or measured[q.id].level) for q in questionnaire.questions
             if q.id in given or q.id in measured}
    levels: dict[Dimension, int | None] = {}
    for dim in Dimension:
        values = [final[q.id] for q in questionnaire.questions if q.dimension is dim and q.id in final]
        levels[dim] = math.floor(sum(values) / len(values) + 0.5) if values else None
    data, automation = levels[Dimension.DATA] or 1, levels[Dimension.AUTOMATION] or 1
    reached = {"foundational": data >= 3, "advanced": data >= 4 and automation >= 3,
               "transformational": automation >= 4 and (levels[Dimension.GOVERNANCE] or 1) >= 4}
    current = next((name for name, _, _ in PHASES if not reached[name]), "transformational")
    roadmap = []
    for name, goal, capabilities in PHASES:
        cases = [c["id"] for c in portfolio if set(c.get("capabilities", [])) & set(capabilities)
                 and c.get("stage") not in ("autonomous", "retired")]
        roadmap.append({"phase": name, "goal": goal, "capabilities": list(capabilities), "done": reached[name],
                        "now": name == current, "next_use_cases": cases})
    return Assessment(levels, final, dict(measured), roadmap)
