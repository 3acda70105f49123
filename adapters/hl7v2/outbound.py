"""Status back to each site's EHR: one EventConsumer per site whose profile names an `outbound`
MLLP destination, sending only events of orders bound to that site (a `site:<partner>:` binding).
The exchange with the EHR runs in the consumer's `deliver`, with no database transaction open.

Transient failures are retried within a delivery (with backoff), then by the queue (requeue up
to the delivery limit); after that the event is dead-lettered and `delivery.failed` is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from adapters.hl7v2.profile import Outbound, SiteProfile
from adapters.hl7v2.render import SiteOrder, control_id, person_name, status_message
from adapters.hl7v2.sender import MllpClient, deliver
from gateway.bus.consumer import EventConsumer
from gateway.canonical.envelope import CloudEvent, utcnow
from gateway.partners import Partner
from gateway.registry import Runtime
from gateway.service.notices import record_delivery_failure
from gateway.store import tables as t

log = logging.getLogger(__name__)
ADAPTER = "hl7v2"


async def site_order(
    conn: AsyncConnection, partner: Partner, profile: SiteProfile, order_id: str, *, acceptance: bool
) -> SiteOrder | None:
    """The order as `partner` knows it, or None when the order is not bound to that site."""
    cw = t.crosswalk
    own = cw.c.namespace.like(f"{partner.own_namespace}%")
    rows = (
        await conn.execute(
            select(cw.c.namespace, cw.c.value, cw.c.patient_id).where(cw.c.order_id == order_id, own)
        )
    ).all()
    if not rows:
        return None
    placer = next((r.value for r in rows if r.namespace == profile.orders.placer_namespace), None)
    mrn = (
        await conn.execute(
            select(cw.c.value).where(
                cw.c.patient_id == rows[0].patient_id, cw.c.namespace == profile.mrn.namespace
            )
        )
    ).scalar()
    document = (
        await conn.execute(select(t.orders.c.document).where(t.orders.c.order_id == order_id))
    ).scalar_one()
    product, patient = document["product"], document.get("patient") or {}
    placed = None
    if acceptance:
        ev, inbound = t.events, t.inbound_messages
        placed = (
            await conn.execute(
                select(inbound.c.message_id)
                .select_from(ev.join(inbound, and_(ev.c.inbound_id == inbound.c.id)))
                .where(ev.c.order_id == order_id, ev.c.type == "org.cgt.order.placed")
            )
        ).scalar()
    name = person_name(patient.get("family_name"), patient.get("given_name"))
    return SiteOrder(placer, mrn, name, product["code"], product.get("name"), product["system"], placed)


class SiteOutbound:
    """The outbound consumer of one site."""

    def __init__(
        self,
        runtime: Runtime,
        partner: Partner,
        profile: SiteProfile,
        outbound: Outbound,
        prefix: str = ADAPTER,
    ) -> None:
        self.runtime, self.partner, self.profile, self.outbound = runtime, partner, profile, outbound
        self.client = MllpClient(
            outbound.host,
            outbound.port,
            connect_timeout=outbound.connect_timeout,
            ack_timeout=outbound.ack_timeout,
        )
        self.consumer = EventConsumer(
            runtime.engine,
            runtime.settings.amqp_url,
            name=f"{prefix}.{partner.id}",
            patterns=list(outbound.events),
            deliver=self.deliver,
            delivery_limit=outbound.delivery_limit or runtime.settings.consumer_delivery_limit,
            on_dead_letter=self.dead_letter,
        )
        self.delivered = 0
        self.consuming = asyncio.Event()
        self._starting: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Consume in the background: a broker that is down at start-up delays, never blocks, the gateway."""
        self._starting = asyncio.create_task(self._start(), name=f"hl7v2-outbound-{self.partner.id}")

    async def _start(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.consumer.start()
                self.consuming.set()
                log.info("HL7 outbound to %s consuming %s", self.partner.id, ", ".join(self.outbound.events))
                return
            except Exception as exc:  # the broker is down or refuses: try again, never give up
                log.warning(
                    "HL7 outbound to %s: cannot consume yet (%s)", self.partner.id, type(exc).__name__
                )
                await self.consumer.stop()
                await asyncio.sleep(delay)
                delay = min(30.0, delay * 2)

    async def stop(self) -> None:
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        await self.consumer.stop()
        await self.client.close()

    async def deliver(self, event: CloudEvent) -> None:
        """Awaited by the consumer with no transaction open: the MLLP exchange holds no lock."""
        order_id = event.data.get("order_id")
        if not isinstance(order_id, str):
            return
        acceptance = event.routing_key == "order.accepted"
        async with self.runtime.engine.connect() as conn:
            order = await site_order(conn, self.partner, self.profile, order_id, acceptance=acceptance)
        if order is None:
            return  # another site's order
        message = status_message(event, order, self.profile, self.outbound, now=utcnow())
        if message is None:
            return
        out = self.outbound
        await deliver(
            self.client,
            message,
            control_id(event),
            attempts=out.attempts,
            backoff=out.backoff,
            retry_on=out.retry_on,
        )
        self.delivered += 1
        log.info("HL7 outbound to %s: %s delivered", self.partner.id, event.routing_key)

    async def acknowledge(self, message: bytes, control_id: str) -> None:
        """An application acknowledgement (MSH-16) to this site's EHR, on the outbound link, with
        the link's retries. Not queued: a restart between commit and delivery loses it."""
        out = self.outbound
        await deliver(
            self.client,
            message,
            control_id,
            attempts=out.attempts,
            backoff=out.backoff,
            retry_on=out.retry_on,
        )
        log.info("HL7 outbound to %s: application acknowledgement delivered", self.partner.id)

    async def dead_letter(self, event: CloudEvent, deliveries: int, reason: str) -> None:
        await record_delivery_failure(
            self.runtime.engine,
            event,
            partner=self.partner.id,
            adapter=ADAPTER,
            attempts=deliveries,
            reason=reason,
        )
