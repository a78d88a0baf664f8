"""Deduplication: many events of one fingerprint become one Alert."""

from watchkeeper.dedup.fingerprint import Deduplicator, DedupReason, DedupResult

__all__ = ["DedupReason", "DedupResult", "Deduplicator"]
