"""How each canonical event changes a therapy order: pure functions, one per event that changes it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from gateway.canonical import payloads as p
from gateway.canonical.lifecycle import (
    OrderStatus,
    refusal_without_transition,
    transition_refusal,
)
from gateway.canonical.order import Shipment, ShipmentDirection, TherapyOrder, qc_test_name
from gateway.errors import IllegalTransition

S = OrderStatus
Change = Callable[[TherapyOrder, Any], tuple[OrderStatus | None, dict[str, Any]]]


def _collection(o: TherapyOrder, **fields: Any) -> dict[str, Any]:
    return {"collection": o.collection.model_copy(update=fields)}


def _manufacturing(o: TherapyOrder, **fields: Any) -> dict[str, Any]:
    return {"manufacturing": o.manufacturing.model_copy(update=fields)}


def _infusion(o: TherapyOrder, **fields: Any) -> dict[str, Any]:
    return {"infusion": o.infusion.model_copy(update=fields)}


def _with_shipment(o: TherapyOrder, shipment: Shipment) -> dict[str, Any]:
    others = tuple(s for s in o.shipments if s.shipment_id != shipment.shipment_id)
    return {"shipments": (*others, shipment)}


def _known_shipment(o: TherapyOrder, ev: p.ShipmentUpdate) -> Shipment:
    shipment = o.shipment(ev.shipment_id)
    if shipment is not None:
        return shipment
    if ev.direction is None:
        raise IllegalTransition(
            "the shipment is not known to the gateway; give its direction",
            detail="shipment update without booking or direction",
        )
    return Shipment(shipment_id=ev.shipment_id, direction=ev.direction)


def _shipment_status(status: str, moves: dict[ShipmentDirection, OrderStatus]) -> Change:
    def change(o: TherapyOrder, ev: p.ShipmentUpdate) -> tuple[OrderStatus | None, dict[str, Any]]:
        shipment = _known_shipment(o, ev)
        fields: dict[str, Any] = {"status": status}
        if status == "picked_up":
            fields["picked_up_at"] = ev.occurred_at
        if status == "delivered":
            fields["delivered_at"] = ev.occurred_at
        if ev.expected_delivery is not None:
            fields["expected_delivery"] = ev.expected_delivery
        return moves.get(shipment.direction), _with_shipment(o, shipment.model_copy(update=fields))

    return change


def _changes(o: TherapyOrder, ev: p.OrderUpdated) -> tuple[None, dict[str, Any]]:
    given = {k: getattr(ev.changes, k) for k in ev.changes.model_fields_set}
    return None, {k: v for k, v in given.items() if v is not None}


def _excursion(o: TherapyOrder, ev: p.TemperatureExcursion) -> tuple[None, dict[str, Any]]:
    shipment = o.shipment(ev.shipment_id)
    if shipment is None:
        raise IllegalTransition("the shipment is not known to the gateway")
    return None, _with_shipment(o, shipment.model_copy(update={"status": "temperature_excursion"}))


def _qc_result(o: TherapyOrder, ev: p.QcResult) -> tuple[None, dict[str, Any]]:
    # The latest result of a test stands: a failed test retested and passed counts as passed.
    return None, _manufacturing(o, qc={**o.manufacturing.qc, qc_test_name(ev.test): ev.result})


def _deviation_opened(o: TherapyOrder, ev: p.DeviationOpened) -> tuple[None, dict[str, Any]]:
    opened = {**o.manufacturing.open_deviations, ev.deviation_id: (ev.severity or "").lower()}
    return None, _manufacturing(o, open_deviations=opened)


def _deviation_closed(o: TherapyOrder, ev: p.DeviationClosed) -> tuple[None, dict[str, Any]]:
    still = {k: v for k, v in o.manufacturing.open_deviations.items() if k != ev.deviation_id}
    return None, _manufacturing(o, open_deviations=still)


def _shipped(o: TherapyOrder, ev: p.ProductShipped) -> tuple[OrderStatus, dict[str, Any]]:
    """The MES says the product left: the order is on its way to the site, and the outbound
    shipment, when named, is known from here on (the courier's own scans then update it)."""
    fields = _manufacturing(o, shipped_at=ev.occurred_at)
    if ev.shipment_id:
        shipment = o.shipment(ev.shipment_id) or Shipment(
            shipment_id=ev.shipment_id, direction=ShipmentDirection.to_site, courier=ev.courier
        )
        moved = {"status": "picked_up", "picked_up_at": ev.occurred_at}
        fields |= _with_shipment(o, shipment.model_copy(update=moved))
    return S.in_transit_to_site, fields


# event name -> change. Events absent here change no field and no status (they are recorded on the
# order's timeline only), but still need a live order.
CHANGES: dict[str, Change] = {
    "order.updated": _changes,
    "order.cancelled": lambda o, ev: (S.cancelled, {}),
    "order.held": lambda o, ev: (S.on_hold, {"status_before_hold": o.status}),
    "order.rejected": lambda o, ev: (S.cancelled, {}),
    "collection.scheduled": lambda o, ev: (
        S.collection_scheduled,
        _collection(o, scheduled_start=ev.scheduled_start, site=ev.site or o.collection.site),
    ),
    "collection.completed": lambda o, ev: (
        S.collected,
        _collection(
            o,
            collected_at=ev.collected_at,
            din=ev.din or o.collection.din,
            site=ev.site or o.collection.site,
        ),
    ),
    "slot.confirmed": lambda o, ev: (
        None,
        _manufacturing(o, manufacturer=ev.manufacturer, slot_id=ev.slot_id, slot_start=ev.slot_start),
    ),
    "shipment.booked": lambda o, ev: (None, _with_shipment(o, ev.shipment)),
    "shipment.picked_up": _shipment_status(
        "picked_up",
        {
            ShipmentDirection.to_manufacturer: S.in_transit_to_manufacturer,
            ShipmentDirection.to_site: S.in_transit_to_site,
        },
    ),
    "shipment.in_transit": _shipment_status("in_transit", {}),
    "shipment.custody_transferred": _shipment_status("in_transit", {}),
    "shipment.delayed": _shipment_status("delayed", {}),
    "shipment.exception": _shipment_status("exception", {}),
    "shipment.delivered": _shipment_status(
        "delivered",
        {
            ShipmentDirection.to_manufacturer: S.received_by_manufacturer,
            ShipmentDirection.to_site: S.delivered_to_site,
        },
    ),
    "shipment.temperature_excursion": _excursion,
    "manufacturing.material_received": lambda o, ev: (
        S.received_by_manufacturer,
        _manufacturing(o, manufacturer=ev.manufacturer or o.manufacturing.manufacturer),
    ),
    "manufacturing.started": lambda o, ev: (
        S.in_manufacturing,
        _manufacturing(o, batch_id=ev.batch_id, started_at=ev.occurred_at),
    ),
    "manufacturing.released": lambda o, ev: (
        S.released,
        _manufacturing(o, batch_id=ev.batch_id, released_at=ev.occurred_at),
    ),
    "manufacturing.qc_result": _qc_result,
    "manufacturing.deviation_opened": _deviation_opened,
    "manufacturing.deviation_closed": _deviation_closed,
    "manufacturing.failed": lambda o, ev: (S.failed, {}),
    "manufacturing.shipped": _shipped,
    "infusion.scheduled": lambda o, ev: (None, _infusion(o, planned_at=ev.planned_at)),
    "infusion.cancelled": lambda o, ev: (None, _infusion(o, planned_at=None)),
    "infusion.completed": lambda o, ev: (S.infused, _infusion(o, infused_at=ev.infused_at)),
}


def apply_event(order: TherapyOrder, event: str, payload: p.Payload, now: datetime) -> TherapyOrder:
    """The order after `event`, or IllegalTransition with the lifecycle's reason."""
    if event == "order.resumed":
        return _resume(order, now)
    change = CHANGES.get(event)
    target, fields = change(order, payload) if change else (None, {})
    refusal = (
        transition_refusal(order.status, target)
        if target is not None
        else refusal_without_transition(order.status)
    )
    if refusal:
        raise IllegalTransition(refusal)
    if target is not None:
        fields["status"] = target
    if target is not None and target is not S.on_hold:
        fields.setdefault("status_before_hold", None)
    return order.model_copy(update={**fields, "version": order.version + 1, "updated_at": now})


def _resume(order: TherapyOrder, now: datetime) -> TherapyOrder:
    if order.status is not S.on_hold or order.status_before_hold is None:
        raise IllegalTransition(f"an order that is {order.status.value} is not on hold")
    return order.model_copy(
        update={
            "status": order.status_before_hold,
            "status_before_hold": None,
            "version": order.version + 1,
            "updated_at": now,
        }
    )
