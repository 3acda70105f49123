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
    if record.reprocessing:  # every record of a re-processing says so, and at whose request
        detail.update(reprocessing_of=record.reprocessing.of, operator=record.reprocessing.operator)
    return AuditEntry(actor=f"partner:{record.partner}", action=action, subject=subject, detail=detail)


def reprocessed(record: InboundRecord, inbound_id: str, status: str) -> AuditEntry:
    """The operator's own record of a re-processing, beside what the message did."""
    assert record.reprocessing is not None
    return AuditEntry(
        actor=f"operator:{record.reprocessing.operator}",
        action="message.reprocessed",
        subject=record.reprocessing.of,
        detail={
            "inbound_id": inbound_id,
            "partner": record.partner,
            "adapter": record.adapter,
            "status": status,
        },
    )


def by_gateway(
    record: InboundRecord, inbound_id: str, action: str, subject: str | None, **detail: Any
) -> AuditEntry:
    """What the gateway itself did because of a partner's message (a hold, a schedule-risk notice)."""
    done = entry(record, inbound_id, action, subject, partner=record.partner, **detail)
    return AuditEntry(actor="gateway", action=action, subject=subject, detail=done.detail)
