"""Authorisation by order (DESIGN §9), pure: may this partner send this command, about this order?

Checked once, in the core, for every dialect and transport:

1. the command's kind: each event names the partner kinds that may send it (a courier never
   places, cancels or holds orders nor updates patients; a manufacturer never places orders);
2. what the command claims about its sender: an order's `ordering_site` is the partner placing it,
   a manufacturer's slot or receipt names that manufacturer, a courier books only with itself;
3. the order: a site acts on the orders it placed and their patients; a courier on orders with a
   shipment booked with it; a manufacturer on the orders assigned to it (the product's
   manufacturer by `mappings/mes/`, or the one the order names once a slot is confirmed).

A refusal is `NotPermitted`: 403 / AR, audited as `message.rejected` with the partner and reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.canonical.catalogue import spec_for
from gateway.canonical.command import Command
from gateway.canonical.order import Product, TherapyOrder
from gateway.canonical.parties import PartnerKind
from gateway.canonical.payloads import (
    MaterialReceived,
    OrderAccepted,
    OrderPlaced,
    ShipmentBooked,
    ShipmentReadings,
    ShipmentUpdate,
    SlotConfirmed,
    TemperatureExcursion,
)
from gateway.errors import ConfigError, NotPermitted
from gateway.partners import Partner, Partners


class _Assignment(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str = Field(min_length=1)
    code: str = Field(min_length=1)
    manufacturer: str = Field(min_length=1)


class _AssignmentFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    products: tuple[_Assignment, ...] = ()


class Assignments:
    """Which manufacturer makes which product (data, `mappings/mes/assignments.yaml`)."""

    def __init__(self, products: Iterable[tuple[str, str, str]] = ()) -> None:
        self._by_product = {(system, code): maker for system, code, maker in products}

    def manufacturer_of(self, product: Product) -> str | None:
        return self._by_product.get((product.system, product.code))

    @property
    def manufacturers(self) -> set[str]:
        return set(self._by_product.values())


def load_assignments(path: Path, partners: Partners) -> Assignments:
    """Read and check the table at start-up: every manufacturer it names is a known manufacturer."""
    try:
        parsed = _AssignmentFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"manufacturer assignments {path}: {exc}") from exc
    assignments = Assignments((a.system, a.code, a.manufacturer) for a in parsed.products)
    known = {p.id for p in partners if p.kind is PartnerKind.manufacturer}
    if unknown := assignments.manufacturers - known:
        raise ConfigError(
            f"manufacturer assignments {path}: not manufacturers in the partner file: {', '.join(sorted(unknown))}"
        )
    return assignments


def _refuse(partner: Partner, reason: str) -> NotPermitted:
    return NotPermitted(reason, detail=f"{partner.id} ({partner.kind.value}): {reason}")


def _claimed_sender(partner: Partner, payload: object) -> str | None:
    """The party the payload says it comes from, where it names one."""
    if isinstance(payload, OrderPlaced):
        return payload.order.ordering_site.id
    if partner.kind is PartnerKind.manufacturer and isinstance(payload, SlotConfirmed | MaterialReceived):
        return payload.manufacturer.id if payload.manufacturer else None
    if isinstance(payload, OrderAccepted):
        return payload.accepted_by.id if payload.accepted_by else None
    if partner.kind is PartnerKind.courier and isinstance(payload, ShipmentBooked):
        return payload.shipment.courier
    return None


def check_sender(partner: Partner, command: Command) -> None:
    """The command's kind, and what it claims about its sender (before anything is resolved)."""
    if partner.kind not in spec_for(command.event).senders:
        raise _refuse(partner, f"a {partner.kind.value} may not send {command.event}")
    if _claimed_sender(partner, command.payload) not in (None, partner.id):
        raise _refuse(partner, f"{command.event} names another partner as its sender")


def _courier_shipment(partner: Partner, order: TherapyOrder, command: Command) -> bool:
    """A courier acts only on shipments declared for it: the one its payload names (by any key),
    and every shipment an identifier of the command names (a tracking number, SSCC, logger id)."""
    payload = command.payload
    for ref in command.refs:
        if ref.namespace == "gs1:sscc" or ref.namespace.startswith("courier:"):
            named = order.shipment(ref.value)
            if named is not None and named.courier != partner.id:
                return False
    if isinstance(payload, ShipmentBooked):
        shipment_id: str | None = payload.shipment.shipment_id
    elif isinstance(payload, ShipmentUpdate | TemperatureExcursion | ShipmentReadings):
        shipment_id = payload.shipment_id
    else:
        shipment_id = None
    if shipment_id is not None:
        shipment = order.shipment(shipment_id)
        return shipment is not None and shipment.courier == partner.id
    return any(s.courier == partner.id for s in order.shipments)


def is_party(partner: Partner, order: TherapyOrder, assignments: Assignments) -> bool:
    """Whether the partner is a party to the order at all (for reads as well as commands)."""
    if partner.kind is PartnerKind.site:
        return order.ordering_site.id == partner.id
    if partner.kind is PartnerKind.manufacturer:
        named = order.manufacturing.manufacturer
        if named is not None:
            return named.id == partner.id
        return assignments.manufacturer_of(order.product) == partner.id
    return any(s.courier == partner.id for s in order.shipments)


def check_order(partner: Partner, order: TherapyOrder, command: Command, assignments: Assignments) -> None:
    """The partner is a party to the order the command resolved to."""
    if partner.kind is PartnerKind.courier:
        allowed = _courier_shipment(partner, order, command)
    else:
        allowed = is_party(partner, order, assignments)
    if not allowed:
        raise _refuse(partner, f"{command.event}: the partner is not a party to this order")


def check_patient(partner: Partner, orders: Iterable[TherapyOrder], command: Command) -> None:
    """A site acts on a patient only through an order it placed for them."""
    if not any(o.ordering_site.id == partner.id for o in orders):
        raise _refuse(partner, f"{command.event}: the patient has no order from this partner")


class Authority:
    """What the intake needs to authorise: the partners, and who makes which product."""

    def __init__(self, partners: Partners, assignments: Assignments) -> None:
        self.partners, self.assignments = partners, assignments

    def sender(self, partner_id: str) -> Partner:
        return self.partners.get(partner_id)

    def check_order(self, partner: Partner, order: TherapyOrder, command: Command) -> None:
        check_order(partner, order, command, self.assignments)

    def check_named(self, partner: Partner, order: TherapyOrder, command: Command) -> None:
        """A partner may not even name an order it is not a party to (by its COI, say): refused
        before reconciliation, so that probing another party's orders is answered 403, not held
        for review."""
        if not is_party(partner, order, self.assignments):
            raise _refuse(partner, f"{command.event}: an identifier names an order of another party")
