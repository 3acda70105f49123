"""The gateway's own notices, written like any event: audited and published through the outbox."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.audit import AuditEntry, append
from gateway.canonical.envelope import CloudEvent, utcnow
from gateway.canonical.payloads import DeliveryFailed
from gateway.service.events import envelope
from gateway.store.db import writer_for
from gateway.store.repository import PendingWrites
from gateway.store.tables import consumed_events


def settled(conn: Connection, consumer: str, event_id: str) -> bool:
    c = consumed_events.c
    found = conn.execute(select(c.event_id).where(c.consumer == consumer, c.event_id == event_id))
    return found.first() is not None


async def record_delivery_failure(
    engine: AsyncEngine,
    failed: CloudEvent,
    *,
    partner: str,
    adapter: str,
    attempts: int,
    reason: str,
    consumer: str | None = None,
) -> CloudEvent:
    """Publish `delivery.failed` about `failed` (an alert for operators), in its own transaction.
    With `consumer`, the same transaction records the event as settled by that consumer, so that
    the alert and the end of the event's deliveries are never one without the other."""
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
            if consumer is not None and not settled(conn, consumer, failed.id):
                conn.execute(
                    insert(consumed_events).values(consumer=consumer, event_id=failed.id, consumed_at=now)
                )

    await writer.run(write)
    return alert
