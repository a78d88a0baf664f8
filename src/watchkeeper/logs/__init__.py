"""Logs: inputs, template mining and log anomalies."""
