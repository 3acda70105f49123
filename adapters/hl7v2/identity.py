"""The patient side of a message: MRN and COI from PID-3 (and MRG-1), demographics from PID-5/7/8."""

from __future__ import annotations

from adapters.hl7v2.er7 import Message, Segment, field_path
from adapters.hl7v2.profile import IdentifierRule, SiteProfile
from adapters.hl7v2.values import Identifier, birth_date, identifiers, person_name
from gateway.sdk import COI_NAMESPACE, ExternalRef, MappingError, PatientIdentity, validate_coi


def _matching(
    found: list[Identifier], rule: IdentifierRule, *, untyped_authorities: tuple[str, ...] | None = None
) -> list[str]:
    """The distinct values of `rule`'s identifiers, in order; one pass (a dict, not a list search:
    a PID-3 of thousands of repetitions must cost thousands of steps, not millions).
    `untyped_authorities`: also take identifiers without a CX-5 type issued by one of these."""
    values: dict[str, None] = {}
    for ident in found:
        typed = rule.matches(ident.authority, ident.type)
        loose = untyped_authorities is not None and not ident.type and ident.authority in untyped_authorities
        if typed or loose:
            values[ident.value] = None
    return list(values)


def _field(segment: Segment | None, rule: IdentifierRule) -> tuple[list[Identifier], str]:
    p = field_path(rule.field)
    return identifiers(segment, p.field), f"{p.segment}-{p.field}"


def mrn(pid: Segment | None, profile: SiteProfile) -> ExternalRef | None:
    found, where = _field(pid, profile.mrn)
    values = _matching(found, profile.mrn)
    if len(values) > 1:
        types = "/".join(profile.mrn.identifier_types)
        raise MappingError(
            f"{where} carries {len(values)} different MRNs (type {types}); the gateway will not choose "
            "between them: send one, or have the site profile name its assigning authority",
            location=where,
            code="205",
        )
    return ExternalRef(namespace=profile.mrn.namespace, value=values[0][:200]) if values else None


def missing_mrn(pid: Segment | None, profile: SiteProfile, *, needed_for: str) -> MappingError:
    """Why there is no MRN: none of the profile's type, or one issued by another authority."""
    rule = profile.mrn
    found, where = _field(pid, rule)
    others = sorted({i.authority for i in found if i.type in rule.identifier_types})
    types = "/".join(rule.identifier_types)
    if rule.assigning_authorities and others:
        return MappingError(
            f"{needed_for} needs the patient's MRN: {where} has type {types} issued by "
            f"{', '.join(repr(a[:20]) for a in others[:3])}, but this site takes "
            f"{', '.join(rule.assigning_authorities)} (CX-4)",
            location=where,
            code="103",
        )
    return MappingError(
        f"{needed_for} needs the patient's MRN in {where} (identifier type {types}, CX-5)",
        location=where,
        code="101",
    )


def prior_mrns(
    mrg: Segment | None, profile: SiteProfile, surviving: Segment | None = None
) -> list[ExternalRef]:
    """MRG-1: the identifiers of the record merged away. MRG-1 often travels without CX-5: an
    untyped identifier of the MRN's authority is an MRN too (the profile's authorities, or, when
    it lists none, the authority of the surviving record's MRN)."""
    rule = profile.mrn
    authorities = rule.assigning_authorities
    if not authorities and surviving is not None:
        found, _ = _field(surviving, rule)
        authorities = tuple({i.authority: None for i in found if rule.matches(i.authority, i.type)})
    values = _matching(identifiers(mrg, 1), rule, untyped_authorities=authorities)
    return [ExternalRef(namespace=rule.namespace, value=v[:200]) for v in values]


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
    sex = profile.patients.sex.get(pid.value(8, 1).upper())  # IS up to 2.6, CWE (code^text^system) from 2.7
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
    pid: Segment | None = None
    for segment in message.segments:
        if segment.name == "PID":
            pid = segment
            found, _ = _field(segment, profile.mrn)
            refs.extend(
                ExternalRef(namespace=profile.mrn.namespace, value=v[:200])
                for v in _matching(found, profile.mrn)
            )
        elif segment.name == "MRG":
            refs.extend(prior_mrns(segment, profile, pid))
    return list(dict.fromkeys(refs))
