"""Appointments from SIU: S12/S13/S14 booked, rescheduled, modified -> collection.scheduled or
infusion.scheduled; S15 cancelled -> collection.cancelled or infusion.cancelled.

Apheresis and infusion are told apart by the service code (AIS-3, else SCH-8 / SCH-7) against the
profile's lists; an appointment of any other kind (a clinic visit, surgery) is not the gateway's
business (`NotOurs`): a hospital sends its whole schedule. The order is found by its placer order number (SCH-26), the COI and the MRN; the
appointment id (SCH-1) is bound to the order so later S13-S15 find it by that alone.
"""

from __future__ import annotations

from adapters.hl7v2.common import pick
from adapters.hl7v2.er7 import Message
from adapters.hl7v2.header import Header
from adapters.hl7v2.identity import coi, demographics, mrn
from adapters.hl7v2.profile import SiteProfile
from adapters.hl7v2.values import timestamp
from gateway.sdk import (
    CollectionScheduled,
    Command,
    ExternalRef,
    InfusionScheduled,
    MappingError,
    NotOurs,
    Party,
    Payload,
    WithReason,
)

SIU_TRIGGERS = ("S12", "S13", "S14", "S15")


def _kind(message: Message, profile: SiteProfile) -> str:
    rules = profile.scheduling
    for path in rules.service:
        code, _ = pick([path], message.segments)
        if code.upper() in rules.apheresis:
            return "apheresis"
        if code.upper() in rules.infusion:
            return "infusion"
    raise NotOurs("not_a_therapy_appointment")


def _payload(kind: str, header: Header, message: Message, profile: SiteProfile) -> tuple[str, Payload]:
    rules = profile.scheduling
    sent, _ = pick(["MSH-7"], message.segments)
    occurred = timestamp(sent, profile.zone, location="MSH-7")
    if header.trigger == "S15":
        reason, _ = pick(rules.reason, message.segments)
        cancelled = "infusion.cancelled" if kind == "infusion" else "collection.cancelled"
        return cancelled, WithReason(occurred_at=occurred, reason=reason[:500] or None)
    value, where = pick(rules.start, message.segments)
    start = timestamp(value, profile.zone, location=where)
    if start is None:
        where = rules.start[0].split(".")[0]
        raise MappingError(f"{where}: the appointment has no start time", location=where, code="101")
    if kind == "infusion":
        return "infusion.scheduled", InfusionScheduled(occurred_at=occurred, planned_at=start)
    location, _ = pick(rules.location, message.segments)
    site = Party(id=location[:200]) if location else None
    return "collection.scheduled", CollectionScheduled(occurred_at=occurred, scheduled_start=start, site=site)


def appointment_commands(message: Message, header: Header, profile: SiteProfile) -> list[Command]:
    rules = profile.scheduling
    if message.first("SCH") is None:
        raise MappingError("a scheduling message needs an SCH segment", location="SCH", code="100")
    kind = _kind(message, profile)  # first: a clinic visit is not ours, whatever else it carries
    pid = message.first("PID")
    placer, _ = pick(rules.placer_order, message.segments)
    appointment, _ = pick(rules.appointment, message.segments)
    refs: list[ExternalRef] = []
    if placer:
        refs.append(ExternalRef(namespace=profile.orders.placer_namespace, value=placer[:200]))
    binds: tuple[ExternalRef, ...] = ()
    if appointment:
        binds = (ExternalRef(namespace=rules.appointment_namespace, value=appointment[:200]),)
    patient_coi = coi(pid, profile)
    order_refs = [*refs, *binds, *([patient_coi] if patient_coi else [])]
    if not order_refs:
        raise MappingError(
            "the appointment names no order (SCH-26) or appointment (SCH-1)", location="SCH-26", code="101"
        )
    patient_mrn = mrn(pid, profile)
    event, payload = _payload(kind, header, message, profile)
    all_refs = (*order_refs, *([patient_mrn] if patient_mrn else []))
    return [
        Command(event=event, payload=payload, refs=all_refs, binds=binds, patient=demographics(pid, profile))
    ]
