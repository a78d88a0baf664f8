"""The edge of metric anomaly detection and forecasting: reading series (files, Prometheus), the
``watchkeeper metrics`` commands and their plots. The pure algorithms live in :mod:`watchkeeper.detect`."""
