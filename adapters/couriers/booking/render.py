"""What to book when a leg is due, from the courier's own view of the order (pure).

    collection.scheduled      -> the inbound leg: the collection site to the order's manufacturer
    manufacturing.released    -> the outbound leg: the manufacturer back to the collection site

Nothing is booked when the leg's shipper is not one this courier books for (its profile's
`legs.<leg>.shippers`), when a place is unknown, or when the order already has a shipment on that
leg (booked by the gateway before, or declared by the site): a redelivered event books nothing
twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from adapters.couriers.booking.profile import BookingProfile, Leg
from adapters.couriers.booking.wire import BookingRequest, Labels, Stop, Window
from gateway.sdk import CloudEvent, OrderView, Product, ShipmentDirection, TemperatureClass

LEG_DUE: dict[str, Leg] = {"collection.scheduled": "inbound", "manufacturing.released": "outbound"}
DIRECTION = {"inbound": ShipmentDirection.to_manufacturer, "outbound": ShipmentDirection.to_site}
ManufacturerOf = Callable[[Product], str | None]


@dataclass(frozen=True)
class Booking:
    """One booking to make: the request's body, and what the shipment will be once booked."""

    event_id: str
    courier: str
    shipper: str  # the partner on whose behalf the gateway books (who ships the leg)
    leg: Leg
    coi: str
    shipment_id: str
    temperature_class: TemperatureClass
    body: bytes


def _din(view: OrderView) -> str | None:
    given = next((r.value for r in view.refs if r.namespace == "isbt128:din"), None)
    return view.order.collection.din or given


def render_booking(
    event: CloudEvent, view: OrderView, profile: BookingProfile, manufacturer_of: ManufacturerOf
) -> Booking | None:
    leg = LEG_DUE.get(event.routing_key)
    rule = profile.legs.get(leg) if leg else None
    if leg is None or rule is None:
        return None
    order = view.order
    if any(s.direction is DIRECTION[leg] for s in order.shipments):
        return None  # the leg is booked already
    named = order.manufacturing.manufacturer
    manufacturer = named.id if named else manufacturer_of(order.product)
    site = order.collection.site.id if order.collection.site else None
    site_place = profile.places.get(site) if site else None
    site_place = site_place or profile.places.get(order.ordering_site.id)
    maker_place = profile.places.get(manufacturer) if manufacturer else None
    shipper = order.ordering_site.id if leg == "inbound" else manufacturer
    if shipper not in rule.shippers or site_place is None or maker_place is None:
        return None
    start = order.collection.scheduled_start if leg == "inbound" else event.time
    if start is None:
        return None
    pickup = Window(start=start + rule.pickup_after, end=start + rule.pickup_after + rule.pickup_window)
    delivery = Window(start=pickup.start, end=pickup.start + rule.deliver_within)
    origin, destination = (site_place, maker_place) if leg == "inbound" else (maker_place, site_place)
    request = BookingRequest(
        reference=order.coi,
        leg=leg,
        service=rule.service,
        temperature_class=rule.temperature_class,
        pickup=Stop(place=origin, window=pickup),
        delivery=Stop(place=destination, window=delivery),
        labels=Labels(coi=order.coi, din=_din(view)),
    )
    return Booking(
        event_id=event.id,
        courier=profile.courier,
        shipper=shipper,
        leg=leg,
        coi=order.coi,
        shipment_id=f"{profile.courier}-{leg}-{event.id[:8]}",
        temperature_class=rule.temperature_class,
        body=orjson.dumps(request.model_dump(mode="json")),
    )
