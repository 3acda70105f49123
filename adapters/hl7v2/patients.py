"""Patient identity from ADT: A01/A04/A08 -> patient.updated, A40 -> patient.merged (per profile).

Every other ADT event is taken and changes nothing (the MLLP listener drops ADT of patients the
gateway does not know before it gets here).
"""

from __future__ import annotations

from adapters.hl7v2.common import groups, pick
from adapters.hl7v2.er7 import Message
from adapters.hl7v2.header import Header
from adapters.hl7v2.identity import demographics, mrn, prior_mrns
from adapters.hl7v2.profile import SiteProfile
from adapters.hl7v2.values import timestamp
from gateway.canonical.command import Command
from gateway.canonical.order import PatientIdentity
from gateway.canonical.payloads import PatientMerged, PatientUpdated
from gateway.errors import MappingError


def adt_commands(message: Message, header: Header, profile: SiteProfile) -> list[Command]:
    rules = profile.patients
    if header.trigger not in rules.updated and header.trigger not in rules.merged:
        return []
    value, where = pick(rules.occurred_at, message.segments)
    when = timestamp(value, profile.zone, location=where)
    _, patients = groups(message, "PID")
    if not patients:
        raise MappingError("an ADT message needs a PID segment", location="PID", code="100")
    commands: list[Command] = []
    for group in patients:
        pid = group[0]
        surviving = mrn(pid, profile)
        if surviving is None:
            raise MappingError("PID-3 carries no MRN of the profile's type", location="PID-3", code="101")
        if header.trigger in rules.updated:
            # The update is the hospital's new truth for its MRN: it is applied, not checked.
            identity = demographics(pid, profile) or PatientIdentity()
            payload = PatientUpdated(occurred_at=when, patient=identity)
            commands.append(Command(event="patient.updated", payload=payload, refs=(surviving,)))
            continue
        mrg = next((s for s in group if s.name == "MRG"), None)
        prior = [r for r in prior_mrns(mrg, profile) if r != surviving]
        if not prior:
            raise MappingError("a merge needs the prior MRN in MRG-1", location="MRG-1", code="101")
        merged = PatientMerged(occurred_at=when, prior=tuple(prior))
        commands.append(Command(event="patient.merged", payload=merged, refs=(surviving, *prior)))
    return commands
