"""The tamper-evident audit trail: an append-only, hash-chained record of everything the gateway did."""

from gateway.audit.chain import AuditEntry, ChainReport, append, verify

__all__ = ["AuditEntry", "ChainReport", "append", "verify"]
