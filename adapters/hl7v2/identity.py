"""The patient side of a message: MRN and COI from PID-3 (and MRG-1), demographics from PID-5/7/8."""

from __future__ import annotations

from adapters.hl7v2.er7 import Message, Segment, field_path
from adapters.hl7v2.profile import IdentifierRule, SiteProfile
from adapters.hl7v2.values import Identifier, birth_date, identifiers, person_name
from gateway.canonical.ids import COI_NAMESPACE, ExternalRef, validate_coi
from gateway.canonical.order import PatientIdentity
from gateway.errors import MappingError


def _matching(found: list[Identifier], rule: IdentifierRule, *, untyped: bool = False) -> list[str]:
    values: list[str] = []
    for ident in found:
        typed = rule.matches(ident.authority, ident.type)
        # MRG-1 often travels without CX-5: an untyped identifier of the MRN's authority is the MRN.
        loose = (
            untyped
            and not ident.type
            and (not rule.assigning_authorities or ident.authority in rule.assigning_authorities)
        )
        if (typed or loose) and ident.value not in values:
            values.append(ident.value)
    return values


def _field(segment: Segment | None, rule: IdentifierRule) -> tuple[list[Identifier], str]:
    p = field_path(rule.field)
    return identifiers(segment, p.field), f"{p.segment}-{p.field}"


def mrn(pid: Segment | None, profile: SiteProfile) -> ExternalRef | None:
    found, where = _field(pid, profile.mrn)
    values = _matching(found, profile.mrn)
    if len(values) > 1:
        raise MappingError(
            f"{where} carries {len(values)} different MRNs of the profile's type", location=where
        )
    return ExternalRef(namespace=profile.mrn.namespace, value=values[0][:200]) if values else None


def prior_mrns(mrg: Segment | None, profile: SiteProfile) -> list[ExternalRef]:
    """MRG-1: the identifiers of the record merged away."""
    values = _matching(identifiers(mrg, 1), profile.mrn, untyped=True)
    return [ExternalRef(namespace=profile.mrn.namespace, value=v[:200]) for v in values]


def coi(pid: Segment | None, profile: SiteProfile) -> ExternalRef | None:
    if profile.coi is None:
        return None
    found, where = _field(pid, profile.coi)
    values = _matching(found, profile.coi)
    if len(values) > 1:
        raise MappingError(f"{where} carries more than one chain-of-identity identifier", location=where)
    if not values:
        return None
    try:
        return ExternalRef(namespace=COI_NAMESPACE, value=validate_coi(values[0]))
    except ValueError:
        raise MappingError(
            f"{where}: the COI is not an ISBT 128 chain-of-identity identifier", location=where, code="102"
        ) from None


def demographics(pid: Segment | None, profile: SiteProfile) -> PatientIdentity | None:
    if pid is None:
        return None
    name = person_name(pid, 5)
    born = birth_date(pid.value(7, 1), location="PID-7")
    sex = profile.patients.sex.get(pid.value(8).upper())
    if name is None and born is None and sex is None:
        return None
    return PatientIdentity(
        family_name=(name.family or "")[:200] or None if name else None,
        given_name=(name.given or "")[:200] or None if name else None,
        birth_date=born,
        sex=sex,
    )


def patient_refs(message: Message, profile: SiteProfile) -> list[ExternalRef]:
    """Every patient identifier of the message (PID-3 MRNs, MRG-1 prior MRNs): the ADT filter's key."""
    refs: list[ExternalRef] = []
    for segment in message.segments:
        if segment.name == "PID":
            found, _ = _field(segment, profile.mrn)
            refs.extend(
                ExternalRef(namespace=profile.mrn.namespace, value=v[:200])
                for v in _matching(found, profile.mrn)
            )
        elif segment.name == "MRG":
            refs.extend(prior_mrns(segment, profile))
    return list(dict.fromkeys(refs))
