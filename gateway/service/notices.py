"""The gateway's own notices, written like any event: audited and published through the outbox."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import AuditEntry, append
from gateway.canonical.envelope import CloudEvent, utcnow
from gateway.canonical.events import envelope
from gateway.canonical.payloads import DeliveryFailed
from gateway.store.appends import PendingWrites
from gateway.store.db import writer_for


async def record_delivery_failure(
    engine: AsyncEngine,
    failed: CloudEvent,
    *,
    partner: str,
    adapter: str,
    attempts: int,
    reason: str,
) -> CloudEvent:
    """Publish `delivery.failed` about `failed` (an alert for operators), in its own transaction."""
    now = utcnow()
    notice = DeliveryFailed(
        partner=partner,
        adapter=adapter,
        event_id=failed.id,
        attempts=attempts,
        reason=reason[:500],
        occurred_at=now,
    )
    alert = envelope(
        "delivery.failed",
        notice.model_dump(),
        source=f"/gateway/outbound/{adapter}",
        subject=failed.subject,
        time=now,
    )
    entry = AuditEntry(
        actor=f"gateway:outbound:{adapter}",
        action="delivery.failed",
        subject=failed.subject,
        detail={"partner": partner, "event_id": failed.id, "attempts": attempts, "alert_id": alert.id},
    )
    writer = writer_for(engine)

    def write() -> None:
        with writer.engine.begin() as conn:
            writes = PendingWrites()
            writes.events([alert], order_id=failed.data.get("order_id"), inbound_id=None)
            writes.flush(conn)
            append(conn, [entry], now)

    await writer.run(write)
    return alert
