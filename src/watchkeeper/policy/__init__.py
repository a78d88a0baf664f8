"""Decide: turn a proposed runbook into a verdict, with a reason, from measured evidence."""

from watchkeeper.policy.base import (
    Autonomy,
    Context,
    Decision,
    Limits,
    PolicyConfig,
    Proposal,
    Reason,
    Risk,
    Verdict,
    Window,
)
from watchkeeper.policy.rules import decide

__all__ = [
    "Autonomy", "Context", "Decision", "Limits", "PolicyConfig", "Proposal", "Reason", "Risk", "Verdict",
    "Window", "decide",
]
