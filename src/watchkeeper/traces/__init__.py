"""Traces: spans in, service call graph and RED series out."""
