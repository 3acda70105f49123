"""Patient identity from ADT: A01/A04/A08 -> patient.updated, A40 -> patient.merged (per profile).

A hospital sends its whole ADT feed. Not the gateway's business, so acknowledged and not stored
(`NotOurs`): every other ADT event (it changes nothing here), and a patient whose PID-3 has no
MRN of the profile's kind (the gateway only ever knows patients by that MRN). ADT of patients the
gateway does not know is dropped by the MLLP listener before it gets here.
"""

from __future__ import annotations

from adapters.hl7v2.common import groups, pick
from adapters.hl7v2.er7 import Message
from adapters.hl7v2.header import Header
from adapters.hl7v2.identity import demographics, mrn, prior_mrns
from adapters.hl7v2.profile import SiteProfile
from adapters.hl7v2.values import timestamp
from gateway.sdk import Command, MappingError, NotOurs, PatientIdentity, PatientMerged, PatientUpdated


def adt_commands(message: Message, header: Header, profile: SiteProfile) -> list[Command]:
    rules = profile.patients
    if header.trigger not in rules.updated and header.trigger not in rules.merged:
        raise NotOurs("adt_event_not_used")
    _, patients = groups(message, "PID")
    if not patients:
        raise MappingError("an ADT message needs a PID segment", location="PID", code="100")
    # A40 may carry several PID/MRG pairs: those without an MRN of the profile's kind are not ours.
    ours = [(g, m) for g in patients if (m := mrn(g[0], profile)) is not None]
    if not ours:
        raise NotOurs("no_site_mrn")
    value, where = pick(rules.occurred_at, message.segments)
    when = timestamp(value, profile.zone, location=where)
    commands: list[Command] = []
    for group, surviving in ours:
        pid = group[0]
        if header.trigger in rules.updated:
            # The update is the hospital's new truth for its MRN: it is applied, not checked.
            identity = demographics(pid, profile) or PatientIdentity()
            payload = PatientUpdated(occurred_at=when, patient=identity)
            commands.append(Command(event="patient.updated", payload=payload, refs=(surviving,)))
            continue
        mrg = next((s for s in group if s.name == "MRG"), None)
        prior = [r for r in prior_mrns(mrg, profile, pid) if r != surviving]
        if not prior:
            raise MappingError("a merge needs the prior MRN in MRG-1", location="MRG-1", code="101")
        merged = PatientMerged(occurred_at=when, prior=tuple(prior))
        commands.append(Command(event="patient.merged", payload=merged, refs=(surviving, *prior)))
    return commands
