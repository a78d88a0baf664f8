"""Correlation: alerts become incidents, each join explained."""

from watchkeeper.correlate.strategies import (
    CoOccurring,
    JoinReason,
    LabelGroup,
    Probe,
    Strategy,
    TextTemplate,
    Topology,
    template,
)
from watchkeeper.correlate.window import Correlator, Join

__all__ = [
    "CoOccurring", "Correlator", "Join", "JoinReason", "LabelGroup", "Probe", "Strategy",
    "TextTemplate", "Topology", "template",
]
