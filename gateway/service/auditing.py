"""The audit entry of what a partner's message did: identifiers and reasons, never its payload."""

from __future__ import annotations

from typing import Any

from gateway.audit import AuditEntry
from gateway.store.records import InboundRecord


def entry(
    record: InboundRecord, inbound_id: str, action: str, subject: str | None, **detail: Any
) -> AuditEntry:
    detail = {k: v for k, v in detail.items() if v is not None}
    detail.update(inbound_id=inbound_id, adapter=record.adapter, transport=record.transport)
    return AuditEntry(actor=f"partner:{record.partner}", action=action, subject=subject, detail=detail)
