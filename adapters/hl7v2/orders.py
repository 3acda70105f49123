"""Therapy orders: ORM^O01, OML^O21 and OMB^O27 -> order.placed / cancelled / updated / held / resumed.

One command per ORC group. ORC-1 says what the group does (per the profile's `order_control`),
ORC-2 is the placer order number, OBR-4 (OMB: BPO-2) the product, ORC-12 / OBR-16 the orderer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adapters.hl7v2.common import Coded, coded, groups, notes, party, pick
from adapters.hl7v2.er7 import Message, Segment
from adapters.hl7v2.header import Header
from adapters.hl7v2.identity import coi, demographics, mrn
from adapters.hl7v2.profile import SiteProfile
from adapters.hl7v2.values import timestamp
from gateway.canonical.command import Command
from gateway.canonical.ids import ExternalRef
from gateway.canonical.order import OrderDetails, Party, Product
from gateway.canonical.payloads import OrderChanges, OrderPlaced, OrderUpdated, Payload, WithReason
from gateway.errors import MappingError
from gateway.partners import Partner


def _product(found: Coded, profile: SiteProfile) -> Product:
    rules = profile.orders
    system = rules.product_systems.get(found.system) if found.system else rules.default_product_system
    if system is None:
        raise MappingError(
            f"{found.location}.3: coding system {found.system[:20]!r} is not in the site profile",
            location=found.location,
            code="103",
        )
    return Product(code=found.code[:50], system=system, name=found.text[:200] or None)


def _when(profile: SiteProfile, *scopes: Sequence[Segment]) -> datetime | None:
    value, where = pick(profile.orders.occurred_at, *scopes)
    return timestamp(value, profile.zone, location=where)


def _payload(
    event: str,
    group: list[Segment],
    head: list[Segment],
    message: Message,
    profile: SiteProfile,
    partner: Partner,
) -> Payload:
    rules = profile.orders
    product_paths = rules.blood_product if message.msh.value(9, 1).upper() == "OMB" else rules.product
    when = _when(profile, group, [message.msh])
    practitioner = party(rules.practitioner, group)
    found = coded(product_paths, group)
    remarks = notes(profile, head, group)
    if event == "order.placed":
        if found is None:
            where = product_paths[0].split(".")[0]
            raise MappingError(f"{where}: a new order needs a product code", location=where, code="101")
        site = Party(id=partner.id, name=partner.name)
        return OrderPlaced(
            occurred_at=when,
            order=OrderDetails(
                product=_product(found, profile),
                ordering_site=site,
                ordering_practitioner=practitioner,
                notes=remarks,
            ),
        )
    if event == "order.updated":
        changes = OrderChanges(
            product=_product(found, profile) if found else None,
            ordering_practitioner=practitioner,
            notes=remarks,
        )
        return OrderUpdated(occurred_at=when, changes=changes)
    reason, _ = pick(rules.reason, group)
    return WithReason(occurred_at=when, reason=reason[:500] or None)


def order_commands(message: Message, header: Header, profile: SiteProfile, partner: Partner) -> list[Command]:
    pid = message.first("PID")
    if pid is None:
        raise MappingError("an order message needs a PID segment", location="PID", code="100")
    head, orders = groups(message, "ORC")
    if not orders:
        raise MappingError("an order message needs an ORC segment", location="ORC", code="100")
    patient_mrn, patient_coi, identity = mrn(pid, profile), coi(pid, profile), demographics(pid, profile)
    commands: list[Command] = []
    for number, group in enumerate(orders, start=1):
        control = group[0].value(1).upper()
        event = profile.orders.order_control.get(control)
        if event is None:
            raise MappingError(
                f"ORC-1 {control[:2]!r} (order {number}) is not taken from this site",
                location="ORC-1",
                code="103",
            )
        placer, _ = pick(profile.orders.placer_order, group)
        if not placer:
            raise MappingError("the placer order number (ORC-2) is missing", location="ORC-2", code="101")
        if event == "order.placed" and patient_mrn is None:
            raise MappingError("a new order needs the patient's MRN in PID-3", location="PID-3", code="101")
        refs: list[ExternalRef] = [r for r in (patient_mrn, patient_coi) if r is not None]
        refs.insert(
            1 if patient_mrn else 0,
            ExternalRef(namespace=profile.orders.placer_namespace, value=placer[:200]),
        )
        commands.append(
            Command(
                event=event,
                payload=_payload(event, group, head, message, profile, partner),
                refs=tuple(refs),
                patient=identity,
            )
        )
    return commands
