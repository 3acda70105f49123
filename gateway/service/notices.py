"""The gateway's own notices, written like any event: audited and published through the outbox."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway import audit
from gateway.audit import AuditEntry
from gateway.canonical.envelope import CloudEvent, utcnow
from gateway.canonical.events import envelope
from gateway.canonical.payloads import DeliveryFailed
from gateway.service.ports import UnitOfWork
from gateway.store.unit_of_work import SqlTransactions


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

    def write(uow: UnitOfWork) -> None:
        uow.events([alert], order_id=failed.data.get("order_id"), inbound_id=None)
        uow.audit([entry], now)
        if consumer is not None:
            uow.settle_delivery(consumer, failed.id, now)

    await SqlTransactions(engine, audit.append).run(write)  # database errors come out transient
    return alert
