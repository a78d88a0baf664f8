"""Metric anomaly detection and forecasting (river-style verbs: learn_one / score_one)."""
