"""Watches: PromQL queries that serve evaluates continuously into anomaly and forecast events."""
