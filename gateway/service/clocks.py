"""Which events start, move and stop a shipment's clocks (the `deadlines` table), on the
transaction that applies them; the sweep (gateway.service.sweep) warns as they run out.

    viability          collection.completed (collected_at) + the product's viability hours;
                       stopped by the inbound leg's delivery or the manufacturer's receipt
    hold_time          the cryogenic leg's pickup + its class's hold hours (the dry shipper);
                       stopped by that shipment's delivery
    promised_delivery  any shipment update carrying `expected_delivery` (moved by the next one);
                       stopped by that shipment's delivery

    logger_silence     a shipment's latest reading + the file's `no_data_minutes` (moved by
                       every batch of readings); at its deadline, a `no_data` logger fault;
                       stopped by the shipment's delivery

An order cancelled or failed stops every clock it has.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.canonical.command import Command
from gateway.canonical.order import Shipment, ShipmentDirection, TherapyOrder
from gateway.canonical.payloads import CollectionCompleted, ShipmentUpdate
from gateway.coldchain.classes import ColdChain
from gateway.coldchain.steps import SILENCE
from gateway.service.ports import ColdChainRows

VIABILITY, HOLD_TIME, PROMISED = "viability", "hold_time", "promised_delivery"
SHIPMENT_CLOCKS = (HOLD_TIME, PROMISED, SILENCE)
ORDER_WIDE = ""  # the shipment_id of a clock that is the order's (viability: before any shipment)
_ENDS_ORDER = frozenset({"order.cancelled", "order.rejected", "manufacturing.failed"})


def shipment_class_hold(chain: ColdChain, order: TherapyOrder, shipment: Shipment) -> float | None:
    code = shipment.temperature_class or chain.for_leg(order.product, shipment.direction)
    return chain.by_code(code)[1].hold_hours if code else None


def move_clocks(
    rows: ColdChainRows, chain: ColdChain, command: Command, order: TherapyOrder, now: datetime
) -> None:
    """After `command` was applied to `order`: start, move or stop the clocks it concerns."""
    event, payload, oid = command.event, command.payload, order.order_id
    if event == "collection.completed" and isinstance(payload, CollectionCompleted):
        hours = chain.viability_hours(order.product)
        if hours:
            start = payload.collected_at
            rows.set_clock(oid, ORDER_WIDE, VIABILITY, start, start + timedelta(hours=hours))
        return
    if event == "manufacturing.material_received":
        rows.stop_clock(oid, ORDER_WIDE, VIABILITY, now)
        return
    if event in _ENDS_ORDER:
        rows.stop_clock(oid, ORDER_WIDE, VIABILITY, now)
        for s in order.shipments:
            for clock in SHIPMENT_CLOCKS:
                rows.stop_clock(oid, s.shipment_id, clock, now)
        return
    if not isinstance(payload, ShipmentUpdate):
        return
    shipment = order.shipment(payload.shipment_id)
    if shipment is None:
        return
    sid, at = shipment.shipment_id, payload.occurred_at or now
    if event == "shipment.delivered":
        for clock in SHIPMENT_CLOCKS:
            rows.stop_clock(oid, sid, clock, at)
        if shipment.direction is ShipmentDirection.to_manufacturer:
            rows.stop_clock(oid, ORDER_WIDE, VIABILITY, at)
        return
    if event == "shipment.picked_up":
        hold = shipment_class_hold(chain, order, shipment)
        if hold:
            rows.set_clock(oid, sid, HOLD_TIME, at, at + timedelta(hours=hold))
    if payload.expected_delivery is not None and payload.expected_delivery > at:
        rows.set_clock(oid, sid, PROMISED, at, payload.expected_delivery)
