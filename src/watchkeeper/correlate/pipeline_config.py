"""How the pipeline correlates and suppresses: the window, the strategies, flapping, inhibition and
the join policy. It lives here, with the strategies it names, so that ``correlate.config`` (which
builds it from YAML) and ``pipeline`` (which runs it) both import it and never each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from watchkeeper.correlate.evidence import JoinPolicy
from watchkeeper.correlate.strategies import Host, LabelGroup, Mentions, Strategy
from watchkeeper.suppress import FlapDetector, InhibitRule


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    window: timedelta = timedelta(minutes=5)
    auto_resolve: bool = True
    strategies: tuple[Strategy, ...] = field(default_factory=lambda: default_strategies())
    flapping: FlapDetector | None = FlapDetector()  # noqa: RUF009 - frozen, safe to share
    inhibit: tuple[InhibitRule, ...] = ()
    join: JoinPolicy = JoinPolicy()  # noqa: RUF009 - frozen, safe to share
    #: an alert revealing a second origin moves weakly joined members of a neighbouring incident
    #: (``False``: never; for the ablation in ``watchkeeper eval correlation``)
    splits: bool = True


def default_strategies() -> tuple[Strategy, ...]:
    """What a user gets with no configuration: Alertmanager's labels only."""
    return LabelGroup(), Mentions(), Host()


