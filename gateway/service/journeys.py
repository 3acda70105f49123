"""One order's journey, read for people: its events with who sent them, its chain of custody, the
temperature record of each leg, its clocks, and the chain-of-custody certificate. The HTTP API
and the operator console both read through here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.canonical.order import TherapyOrder
from gateway.errors import NotFound
from gateway.partners import Partner
from gateway.service.certificate import certificate
from gateway.service.custody import Custody, custody
from gateway.store import journey
from gateway.store.journey import Sent
from gateway.store.reads import order_by_coi


@dataclass
class Journey:
    order: TherapyOrder
    events: list[Sent]
    custody: Custody
    readings: list[dict[str, Any]] = field(default_factory=list)
    clocks: list[dict[str, Any]] = field(default_factory=list)


class Journeys:
    def __init__(
        self, engine: AsyncEngine, partners: Iterable[Partner], clock: Callable[[], datetime]
    ) -> None:
        self.engine, self.clock = engine, clock
        self.parties: dict[str, str] = {}
        for p in partners:
            self.parties[p.id.casefold()] = p.id
            if p.name:
                self.parties[p.name.casefold()] = p.id

    async def order(self, coi: str) -> TherapyOrder:
        async with self.engine.connect() as conn:
            found = await order_by_coi(conn, coi.strip().upper())
        if found is None:
            raise NotFound("no order has this COI")
        return found

    async def journey(self, coi: str) -> Journey:
        order = await self.order(coi)
        async with self.engine.connect() as conn:
            events = await journey.sent_events(conn, order.order_id, order.coi)
            readings = await journey.readings(conn, order.order_id)
            clocks = await journey.clocks(conn, order.order_id)
        chain = custody(order, events, readings, self.parties)
        return Journey(order, events, chain, readings, clocks)

    async def certificate(self, coi: str, issuer: str) -> tuple[Custody, bytes]:
        found = await self.journey(coi)
        product = found.order.product
        label = f"{product.code} {product.name or ''}".strip()
        pdf = certificate(found.custody, product=label, issued_at=self.clock(), issuer=issuer)
        return found.custody, pdf


def custody_json(chain: Custody) -> dict[str, Any]:
    """The chain of custody as the API answers it."""

    def mark(m: Any) -> dict[str, Any] | None:
        return {"seq": m.seq, "hash": m.hash, "prev_hash": m.prev_hash} if m else None

    return {
        "coi": chain.coi,
        "status": chain.status,
        "complete": chain.complete,
        "holder": chain.holder,
        "handoffs": [
            {
                "at": h.at.isoformat(),
                "event": h.event,
                "event_id": h.event_id,
                "kind": h.kind,
                "from": h.from_holder,
                "to": h.to_holder,
                "signed_by": h.signed_by,
                "location": h.location,
                "shipment_id": h.shipment_id,
                "reported_by": h.reported_by,
                "checks": list(h.checks),
                "audit": mark(h.audit),
            }
            for h in chain.handoffs
        ],
        "gaps": [{"at": g.at.isoformat(), "event_id": g.event_id, "reason": g.reason} for g in chain.gaps],
        "legs": [
            {
                "shipment_id": leg.shipment_id,
                "direction": leg.direction,
                "courier": leg.courier,
                "tracking_number": leg.tracking_number,
                "temperature_class": leg.temperature_class,
                "picked_up_at": leg.picked_up_at.isoformat() if leg.picked_up_at else None,
                "delivered_at": leg.delivered_at.isoformat() if leg.delivered_at else None,
                "readings": leg.readings,
                "min_c": leg.min_c,
                "max_c": leg.max_c,
                "excursions": [
                    {
                        "at": e.at.isoformat(),
                        "temperature_c": e.temperature_c,
                        "limit_c": e.limit_c,
                        "duration_s": e.duration_s,
                        "severity": e.severity,
                    }
                    for e in leg.excursions
                ],
            }
            for leg in chain.legs
        ],
    }
