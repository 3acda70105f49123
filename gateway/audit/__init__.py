"""The tamper-evident audit trail: an append-only, hash-chained record of everything the gateway did,
its head signed at intervals with a key outside the database."""

from gateway.audit.chain import AuditEntry, append
from gateway.audit.verify import ChainReport, verify

__all__ = ["AuditEntry", "ChainReport", "append", "verify"]
