"""The vein-to-vein timeline of one order, as the console shows it: the stages with their times,
every event with who sent it, the custody handoffs and gaps, each leg's temperature chart with
its excursions, the clocks. The patient (demographics and patient identifiers) is shown to the
operator and QA roles only, and every showing is audited (`order.patient_viewed`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.console.charts import Band, clock_bar, temperature_chart
from gateway.console.sessions import Session
from gateway.store.journey import patient_refs

if TYPE_CHECKING:
    from gateway.console.web import Console

HIDDEN = {"order_id", "coi", "patient_id", "status", "occurred_at", "order", "readings"}
PATIENT_AUDIT = "order.patient_viewed"


async def order_page(console: Console, session: Session, coi: str) -> dict[str, Any]:
    journeys = console.journeys
    found = await journeys.journey(coi)
    order, chain = found.order, found.custody
    now = journeys.clock()
    patient = None
    if session.operator.may("operator"):
        async with journeys.engine.connect() as conn:
            refs = await patient_refs(conn, order.patient_id)
        patient = {"identity": order.patient.model_dump(exclude_none=True), "identifiers": refs}
        await console.desk.patient_shown(order.coi, session.operator, PATIENT_AUDIT)
    events = [
        {
            "time": e.occurred_at,
            "type": e.type,
            "sender": f"{e.partner} ({e.adapter})" if e.partner else "gateway",
            "details": _details(e.data),
            "excursion": e.type == "shipment.temperature_excursion",
            "audit": e.audit,
        }
        for e in found.events
        if e.type != "shipment.readings_reported"
    ]
    legs = []
    for leg in chain.legs:
        shipment = order.shipment(leg.shipment_id)
        keys = shipment.keys if shipment else {leg.shipment_id}
        readings = [r for r in found.readings if r["shipment_id"] in keys]
        bands = [
            Band(x.started_at or x.at, x.ended_at or x.started_at or x.at, x.limit_c, x.severity)
            for x in leg.excursions
        ]
        legs.append({"leg": leg, "chart": temperature_chart(readings, bands)})
    clocks = [
        {
            **c,
            "bar": clock_bar(c["starts_at"], c["due_at"], now, c["stopped_at"]),
            "left_h": (c["due_at"] - now).total_seconds() / 3600,
        }
        for c in found.clocks
    ]
    return {
        "order": order,
        "stages": _stages(
            order, next((e.occurred_at for e in found.events if e.type == "order.placed"), None)
        ),
        "events": events,
        "custody": chain,
        "legs": legs,
        "clocks": clocks,
        "patient": patient,
        "now": now,
    }


def _stages(order: Any, placed_at: Any) -> list[tuple[str, Any]]:
    inbound = [s for s in order.shipments if s.direction == "to_manufacturer"]
    outbound = [s for s in order.shipments if s.direction == "to_site"]
    m = order.manufacturing
    return [
        ("Ordered", placed_at or order.created_at),
        ("Collected", order.collection.collected_at),
        ("Picked up for manufacturing", inbound[-1].picked_up_at if inbound else None),
        ("Delivered to manufacturer", inbound[-1].delivered_at if inbound else None),
        ("Manufacturing started", m.started_at),
        ("Released", m.released_at),
        ("Picked up for the site", outbound[-1].picked_up_at if outbound else None),
        ("Delivered to the site", outbound[-1].delivered_at if outbound else None),
        ("Infused", order.infusion.infused_at),
    ]


def _details(data: Any) -> str:
    parts = []
    for key, value in data.items():
        if key in HIDDEN or value in (None, "", [], {}):
            continue
        if isinstance(value, dict):
            value = value.get("id") or value.get("code") or ", ".join(f"{k}={v}" for k, v in value.items())
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)[:300]
