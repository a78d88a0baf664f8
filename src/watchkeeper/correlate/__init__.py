"""Correlation: alerts become incidents, each join explained."""

from watchkeeper.correlate.window import Join, JoinReason, ServiceWindowCorrelator

__all__ = ["Join", "JoinReason", "ServiceWindowCorrelator"]
