"""The chain of custody of one order, from collection to infusion, built from the order's events.

Each event that moves the material (collection, pickup, handoff, delivery, receipt at the
manufacturer, product shipped, infusion) is a step from one holder to the next. Who held it is a
party: a partner id where the text names a partner (its id or its name), the text as sent
otherwise. A step whose sender says who handed over (`handed_over_by`), or that can only start
from one holder (the manufacturer ships, the site infuses), must start where the previous step
ended; otherwise the chain has a gap, and the gap is reported as such, never smoothed over. A
step that starts with nobody holding the material (no collection recorded) is a gap too.

Pure: the store reads (gateway.store.journey) hand it the order, its events with their senders
and audit hashes, and the shipments' readings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.canonical.order import Shipment, ShipmentDirection, TherapyOrder
from gateway.store.journey import AuditMark, Sent

PATIENT = "patient"
MOVES = frozenset(
    {
        "collection.completed",
        "shipment.picked_up",
        "shipment.in_transit",
        "shipment.custody_transferred",
        "shipment.delivered",
        "manufacturing.material_received",
        "manufacturing.shipped",
        "infusion.completed",
    }
)


@dataclass(frozen=True)
class Handoff:
    """A step of the chain: `kind` is `handoff` (the holder changed) or `check` (a receipt
    confirmed by the holder it was already with)."""

    at: datetime
    event: str
    event_id: str
    from_holder: str
    to_holder: str
    kind: str = "handoff"
    signed_by: str | None = None
    location: str | None = None
    shipment_id: str | None = None
    reported_by: str | None = None
    checks: tuple[str, ...] = ()
    audit: AuditMark | None = None


@dataclass(frozen=True)
class Gap:
    at: datetime
    event_id: str
    reason: str


@dataclass(frozen=True)
class Excursion:
    at: datetime
    temperature_c: float | None
    limit_c: float | None
    duration_s: int | None
    severity: str | None
    started_at: datetime | None
    ended_at: datetime | None


@dataclass(frozen=True)
class Leg:
    """A shipment and its temperature record."""

    shipment_id: str
    direction: str
    courier: str | None
    tracking_number: str | None
    temperature_class: str | None
    picked_up_at: datetime | None
    delivered_at: datetime | None
    readings: int = 0
    min_c: float | None = None
    max_c: float | None = None
    excursions: tuple[Excursion, ...] = ()


@dataclass
class Custody:
    coi: str
    order_id: str
    status: str
    holder: str | None = None
    handoffs: list[Handoff] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    legs: list[Leg] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """From collection to infusion, with no gap."""
        return not self.gaps and self.holder == PATIENT and bool(self.handoffs)


def custody(
    order: TherapyOrder,
    events: Sequence[Sent],
    readings: Iterable[Mapping[str, Any]] = (),
    parties: Mapping[str, str] | None = None,
) -> Custody:
    """`parties`: casefolded partner id or name -> partner id."""
    walk = _Walk(order, parties or {})
    for sent in events:
        if sent.type in MOVES:
            walk.step(sent)
    chain = Custody(order.coi, order.order_id, order.status.value, walk.holder, walk.handoffs, walk.gaps)
    chain.legs = [_leg(s, events, readings) for s in order.shipments]
    return chain


class _Walk:
    def __init__(self, order: TherapyOrder, parties: Mapping[str, str]) -> None:
        self.order, self.parties = order, parties
        self.holder: str | None = None
        self.handoffs: list[Handoff] = []
        self.gaps: list[Gap] = []

    def party(self, text: object) -> str | None:
        if not isinstance(text, str) or not text.strip():
            return None
        return self.parties.get(text.strip().casefold(), text.strip())

    def step(self, sent: Sent) -> None:
        d, kind = sent.data, sent.type
        shipment = self.order.shipment(str(d.get("shipment_id", ""))) if d.get("shipment_id") else None
        said_from, said_to = self.party(d.get("handed_over_by")), self.party(d.get("custodian"))
        fixed_from: str | None = None  # the only holder this step can start from
        if kind == "collection.completed":
            site = d.get("site")
            frm = PATIENT
            to = self.party(site.get("id") if isinstance(site, dict) else None) or sent.partner or "site"
            if self.holder is not None:
                self._gap(sent, f"collected again while the chain had it with {self.holder}")
        elif kind == "manufacturing.material_received":
            frm, to = said_from or self.holder or "?", self.manufacturer(sent)
        elif kind == "manufacturing.shipped":
            fixed_from = self.manufacturer(sent)
            frm = said_from or fixed_from
            to = said_to or self.party(d.get("courier")) or _courier(shipment) or "courier"
        elif kind == "infusion.completed":
            fixed_from = self.order.ordering_site.id
            frm, to = said_from or self.holder or "?", PATIENT
        else:  # a shipment's own steps
            if kind == "shipment.in_transit" and said_to is None:
                return
            if kind == "shipment.custody_transferred" and said_to is None:
                self._gap(sent, "a handoff that names no new custodian")
            to = said_to or self._shipment_end(kind, shipment, sent) or self.holder or "?"
            frm = said_from or self.holder or "?"
        if kind != "collection.completed":
            if self.holder is None:
                self._gap(sent, "no record of who held the material before (no collection recorded)")
            elif frm != self.holder:
                self._gap(sent, f"{frm} handed over, but the chain last had it with {self.holder}")
            elif fixed_from is not None and self.holder != fixed_from:
                self._gap(sent, f"starts from {fixed_from}, but the chain last had it with {self.holder}")
        step = "check" if frm == to == self.holder else "handoff"
        self.handoffs.append(
            Handoff(
                at=sent.occurred_at,
                event=kind,
                event_id=sent.event_id,
                from_holder=frm,
                to_holder=to,
                kind=step,
                signed_by=_text(d.get("signed_by")),
                location=_text(d.get("location")),
                shipment_id=shipment.shipment_id if shipment else _text(d.get("shipment_id")),
                reported_by=sent.partner,
                checks=self.checks(sent, shipment),
                audit=sent.audit,
            )
        )
        self.holder = to

    def manufacturer(self, sent: Sent) -> str:
        maker = self.order.manufacturing.manufacturer
        named = sent.data.get("manufacturer")
        return (
            self.party(named.get("id") if isinstance(named, dict) else None)
            or (maker.id if maker else None)
            or sent.partner
            or "manufacturer"
        )

    def _shipment_end(self, kind: str, shipment: Shipment | None, sent: Sent) -> str | None:
        if kind == "shipment.picked_up":
            return _courier(shipment) or sent.partner
        if kind != "shipment.delivered" or shipment is None:
            return None
        if shipment.direction == ShipmentDirection.to_site:
            return self.order.ordering_site.id
        maker = self.order.manufacturing.manufacturer
        return maker.id if maker else "manufacturer"

    def checks(self, sent: Sent, shipment: Shipment | None) -> tuple[str, ...]:
        """What was verified at this boundary before the step was applied."""
        d, order = sent.data, self.order
        found = [f"identifiers reconciled to COI {order.coi}"]
        if sent.partner:
            found.append(f"sender {sent.partner} authorised as a party to the order")
        din = d.get("din")
        if isinstance(din, str) and order.collection.din and din == order.collection.din:
            found.append(f"DIN {din} matches the order's")
        if d.get("scanned_coi") == order.coi:
            found.append("COI scanned on the bag matches the order's")
        if shipment is not None:
            found.append(f"shipment {shipment.shipment_id} declared for {shipment.courier or 'its courier'}")
        return tuple(found)

    def _gap(self, sent: Sent, reason: str) -> None:
        self.gaps.append(Gap(sent.occurred_at, sent.event_id, reason))


def _leg(shipment: Shipment, events: Sequence[Sent], readings: Iterable[Mapping[str, Any]]) -> Leg:
    keys = shipment.keys
    mine = [r for r in readings if r.get("shipment_id") in keys]
    values = [
        v for r in mine for v in (r.get("temperature_c"), r.get("min_c"), r.get("max_c")) if v is not None
    ]
    excursions = tuple(
        Excursion(
            at=e.occurred_at,
            temperature_c=e.data.get("temperature_c"),
            limit_c=e.data.get("limit_c"),
            duration_s=e.data.get("duration_s"),
            severity=e.data.get("severity"),
            started_at=_when(e.data.get("started_at")),
            ended_at=_when(e.data.get("ended_at")),
        )
        for e in events
        if e.type == "shipment.temperature_excursion" and e.data.get("shipment_id") in keys
    )
    return Leg(
        shipment_id=shipment.shipment_id,
        direction=shipment.direction.value,
        courier=shipment.courier,
        tracking_number=shipment.tracking_number,
        temperature_class=shipment.temperature_class.value if shipment.temperature_class else None,
        picked_up_at=shipment.picked_up_at,
        delivered_at=shipment.delivered_at,
        readings=len(mine),
        min_c=min(values) if values else None,
        max_c=max(values) if values else None,
        excursions=excursions,
    )


def _courier(shipment: Shipment | None) -> str | None:
    return shipment.courier if shipment else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _when(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
