"""The outbound runner's ledger over the gateway's database (the Deliveries port of gateway.sdk).

An event is settled by a consumer once it was delivered, skipped (not the destination's) or given
up with `delivery.failed`: one `consumed_events` row either way. Order between the events of one
order is the outbox's: the order in which they were committed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.bus.topology import topic_matches
from gateway.canonical.envelope import CloudEvent, utcnow
from gateway.errors import TransientError
from gateway.partners import Partner
from gateway.service.notices import record_delivery_failure
from gateway.store import tables as t

T = TypeVar("T")
# An earlier event older than this is not waited for: it predates the destination, or was settled.
WAIT_WINDOW = timedelta(minutes=15)
PLACED = "org.cgt.order.placed"


async def _translated(work: Awaitable[T]) -> T:
    try:
        return await work
    except DBAPIError as exc:
        raise TransientError(detail=f"delivery ledger: {type(exc.orig).__name__}") from exc


class StoreDeliveries:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def settled(self, consumer: str, event_id: str) -> bool:
        c = t.consumed_events.c
        query = select(c.event_id).where(c.consumer == consumer, c.event_id == event_id)

        async def read() -> bool:
            async with self.engine.connect() as conn:
                return (await conn.execute(query)).first() is not None

        return await _translated(read())

    async def settle(self, consumer: str, event_id: str) -> None:
        async def write() -> None:
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(
                        insert(t.consumed_events).values(
                            consumer=consumer, event_id=event_id, consumed_at=utcnow()
                        )
                    )
            except IntegrityError:
                pass  # settled already (a redelivery after a crash): the same outcome

        await _translated(write())

    async def unsettled_before(
        self, consumer: str, event: CloudEvent, order_id: str, patterns: Sequence[str]
    ) -> set[str]:
        o, e, done = t.outbox, t.events, t.consumed_events

        async def read() -> set[str]:
            async with self.engine.connect() as conn:
                mine = select(o.c.id).where(o.c.event_id == event.id).scalar_subquery()
                rows = await conn.execute(
                    select(e.c.event_id, e.c.type)
                    .join(o, o.c.event_id == e.c.event_id)
                    .where(e.c.order_id == order_id, o.c.id < mine, e.c.time >= event.time - WAIT_WINDOW)
                )
                earlier = {
                    str(r.event_id)
                    for r in rows
                    if any(topic_matches(p, str(r.type).removeprefix("org.cgt.")) for p in patterns)
                }
                if not earlier:
                    return earlier
                settled = await conn.execute(
                    select(done.c.event_id).where(done.c.consumer == consumer, done.c.event_id.in_(earlier))
                )
                return earlier - {r.event_id for r in settled}

        return await _translated(read())

    async def give_up(
        self, consumer: str, event: CloudEvent, *, partner: str, adapter: str, attempts: int, reason: str
    ) -> None:
        await _translated(
            record_delivery_failure(
                self.engine,
                event,
                partner=partner,
                adapter=adapter,
                attempts=attempts,
                reason=reason,
                consumer=consumer,
            )
        )

    async def placing_message(self, partner: Partner, order_id: str) -> str | None:
        ev, inbound = t.events, t.inbound_messages
        query = (
            select(inbound.c.message_id)
            .select_from(ev.join(inbound, ev.c.inbound_id == inbound.c.id))
            .where(ev.c.order_id == order_id, ev.c.type == PLACED, inbound.c.partner == partner.id)
        )

        async def read() -> str | None:
            async with self.engine.connect() as conn:
                return (await conn.execute(query)).scalar()

        return await _translated(read())
