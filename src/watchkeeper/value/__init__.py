"""Value and governance of the AIOps programme itself, pure: the use-case portfolio
(:mod:`~watchkeeper.value.usecase`), the KPIs its stage gates measure (:mod:`~watchkeeper.value.kpis`)
and the gates (:mod:`~watchkeeper.value.gates`), prioritization, ROI, maturity and model drift.

Nothing here reads a database, a clock or a file: the portfolio (``watchkeeper.portfolio``)
gathers the evidence from storage and hands it in; see ``docs/value.md``.
"""

from watchkeeper.value.gates import GateDecision, GateReason, Move, Result, gate, judge
from watchkeeper.value.kpis import Evidence, Measure, measure, measure_all
from watchkeeper.value.usecase import STAGE_AUTONOMY, Criterion, Kpi, Stage, UseCase, autonomy_of

__all__ = [
    "STAGE_AUTONOMY", "Criterion", "Evidence", "GateDecision", "GateReason", "Kpi", "Measure", "Move", "Result",
    "Stage", "UseCase", "autonomy_of", "gate", "judge", "measure", "measure_all",
]
