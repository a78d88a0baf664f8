"""Correlation: alerts become incidents, each join explained."""

from watchkeeper.correlate.strategies import (
    CoOccurring,
    Host,
    JoinReason,
    LabelGroup,
    Mentions,
    Probe,
    Strategy,
    TextTemplate,
    Topology,
    template,
)
from watchkeeper.correlate.window import Correlator, Join

__all__ = [
    "CoOccurring", "Correlator", "Host", "Join", "JoinReason", "LabelGroup", "Mentions", "Probe", "Strategy",
    "TextTemplate", "Topology", "template",
]
