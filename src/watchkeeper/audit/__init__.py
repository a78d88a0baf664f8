"""The hash-chained, append-only audit log (pure part: hashing, appending, verifying)."""

from watchkeeper.audit.chain import GENESIS, AuditChain, Verdict, canonical_json, record_hash, verify

__all__ = ["GENESIS", "AuditChain", "Verdict", "canonical_json", "record_hash", "verify"]
