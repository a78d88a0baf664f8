"""Watchkeeper: alert storms in, a few explained incidents out, every step governed and audited."""

__version__ = "0.1.0"
