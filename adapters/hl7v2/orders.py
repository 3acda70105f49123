"""Therapy orders: ORM^O01, OML^O21 and OMB^O27 -> order.placed / cancelled / updated / held / resumed.

One command per ORC group that is a therapy order. ORC-1 says what the group does (per the
profile's `order_control`), ORC-2 is the placer order number, OBR-4 (OMB: BPO-2) the product,
ORC-12 / OBR-16 the orderer.

Which groups are ours is decided from the message alone (mapping is pure: it cannot ask whether
a placer number is known). A group that names a product is ours when the product is a therapy
product (`therapy.kind_of`); a lab or imaging order, a cancel of one included (ORC-1 CA with the
test's OBR), names its test and is not. A group that names no product is ours only when its ORC-1
is one of the site's follow-ups (cancel, hold, release, change): it refers to an order by its
placer number, and reconciliation finds that order or holds the message for review. The groups
that are not ours are left out; when no group is ours the message is `NotOurs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adapters.hl7v2.common import coded, groups, notes, party, pick, valued
from adapters.hl7v2.er7 import Message, Segment
from adapters.hl7v2.header import Header
from adapters.hl7v2.identity import coi, demographics, missing_mrn, mrn
from adapters.hl7v2.profile import SiteProfile
from adapters.hl7v2.therapy import kind_of, product
from adapters.hl7v2.values import timestamp
from gateway.sdk import (
    Command,
    ExternalRef,
    MappingError,
    NotOurs,
    OrderChanges,
    OrderDetails,
    OrderPlaced,
    OrderUpdated,
    Partner,
    Party,
    Payload,
    WithReason,
)


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
    product_paths = _product_paths(message, profile)
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
                product=product(found, profile),
                ordering_site=site,
                ordering_practitioner=practitioner,
                notes=remarks,
            ),
        )
    if event == "order.updated":
        changes = OrderChanges(
            product=product(found, profile) if found else None,
            ordering_practitioner=practitioner,
            notes=remarks,
        )
        return OrderUpdated(occurred_at=when, changes=changes)
    reason, _ = pick(rules.reason, group)
    return WithReason(occurred_at=when, reason=reason[:500] or None)


def _product_paths(message: Message, profile: SiteProfile) -> tuple[str, ...]:
    rules = profile.orders
    return rules.blood_product if message.msh.value(9, 1).upper() == "OMB" else rules.product


def is_therapy(group: list[Segment], message: Message, profile: SiteProfile) -> bool:
    """Whether this ORC group is a therapy order the gateway takes (module docstring)."""
    paths = _product_paths(message, profile)
    found = coded(paths, group)
    if found is not None:
        return kind_of(found, profile) != "other"  # "unclear" is ours, and refused when mapped
    if valued(paths, group):
        return False  # a product named by text alone (`^KNEE-RIGHT AP LAT^L`): not a therapy code
    event = profile.orders.order_control.get(group[0].value(1).upper())
    return event is not None and event != "order.placed"


def order_commands(message: Message, header: Header, profile: SiteProfile, partner: Partner) -> list[Command]:
    head, orders = groups(message, "ORC")
    if not orders:
        raise MappingError("an order message needs an ORC segment", location="ORC", code="100")
    ours = [(n, g) for n, g in enumerate(orders, start=1) if is_therapy(g, message, profile)]
    if not ours:
        raise NotOurs("not_a_therapy_order")
    pid = message.first("PID")
    if pid is None:
        raise MappingError("an order message needs a PID segment", location="PID", code="100")
    patient_mrn, patient_coi, identity = mrn(pid, profile), coi(pid, profile), demographics(pid, profile)
    commands: list[Command] = []
    for number, group in ours:
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
            raise missing_mrn(pid, profile, needed_for="a new order")
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
