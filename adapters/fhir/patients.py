"""Patient updates and merges: a Patient on its own, a Patient `link` (replaced-by / replaces), or a
`Patient/$merge` Parameters resource -> patient.updated / patient.merged."""

from __future__ import annotations

from adapters.fhir.profile import SiteProfile
from adapters.fhir.resources import (
    Contents,
    Json,
    Located,
    identifiers_of,
    patient_identity,
    reference_identifiers,
    refs_of,
)
from gateway.sdk import Command, ExternalRef, MappingError, UnsupportedMessage


def _mrns(identifiers: list[Json], profile: SiteProfile, path: str) -> list[ExternalRef]:
    found = refs_of(identifiers, profile, "mrn")
    if not found:
        raise MappingError(
            f"the patient needs an MRN (system {profile.rule('mrn').system} or type MR)", location=path
        )
    return found


def merged(survivors: list[ExternalRef], prior: list[ExternalRef]) -> Command:
    folded = [r for r in prior if r not in survivors]
    if not folded:
        raise MappingError("the merge names the same record on both sides")
    return Command.model_validate(
        {"event": "patient.merged", "refs": [*survivors, *folded], "payload": {"prior": folded}}
    )


def patient_command(located: Located, contents: Contents, profile: SiteProfile) -> Command:
    """A Patient sent on its own: a merge when it links to the record it replaces or is replaced by,
    otherwise new demographics for the patient its MRN names."""
    resource, path = located.resource, located.path
    own = _mrns(identifiers_of(resource), profile, f"{path}.identifier")
    for i, link in enumerate(resource.get("link") or []):
        kind = link.get("type")
        if kind not in ("replaced-by", "replaces"):
            continue
        where = f"{path}.link[{i}].other"
        other = _mrns(reference_identifiers(link.get("other"), contents), profile, where)
        return merged(other, own) if kind == "replaced-by" else merged(own, other)
    if resource.get("active") is False:
        raise UnsupportedMessage(
            "an inactive Patient without a replaced-by link is not taken", location=f"{path}.active"
        )
    identity = patient_identity(resource)
    return Command.model_validate({"event": "patient.updated", "refs": own, "payload": {"patient": identity}})


def merge_parameters(parameters: Json, profile: SiteProfile) -> Command:
    """`Patient/$merge`: source-patient(-identifier) is folded into target-patient(-identifier)."""
    source: list[Json] = []
    target: list[Json] = []
    for i, parameter in enumerate(parameters.get("parameter") or []):
        name = parameter.get("name")
        if name == "preview" and parameter.get("valueBoolean"):
            raise UnsupportedMessage(
                "a preview merge is not supported", location=f"Parameters.parameter[{i}]"
            )
        side = source if name in ("source-patient", "source-patient-identifier") else None
        side = target if name in ("target-patient", "target-patient-identifier") else side
        if side is None:
            continue
        if "valueIdentifier" in parameter:
            side.append(parameter["valueIdentifier"])
        elif (parameter.get("valueReference") or {}).get("identifier"):
            side.append(parameter["valueReference"]["identifier"])
        else:
            raise MappingError(
                "name patients by identifier (an MRN); references to resources are not resolvable here",
                location=f"Parameters.parameter[{i}]",
            )
    prior = _mrns(source, profile, "Parameters.parameter.where(name='source-patient-identifier')")
    survivors = _mrns(target, profile, "Parameters.parameter.where(name='target-patient-identifier')")
    return merged(survivors, prior)


def patient_refs_named(document: Json, contents: Contents, profile: SiteProfile) -> list[ExternalRef]:
    """Every MRN a patient update or merge names (its Patients, their links, $merge's sides)."""
    identifiers: list[Json] = []
    if document["resourceType"] == "Parameters":
        for parameter in document.get("parameter") or []:
            identifiers.append(parameter.get("valueIdentifier") or {})
            identifiers.append((parameter.get("valueReference") or {}).get("identifier") or {})
    for located in contents.of_type("Patient"):
        identifiers += identifiers_of(located.resource)
        for link in located.resource.get("link") or []:
            identifiers += reference_identifiers(link.get("other"), contents)
    return refs_of(identifiers, profile, "mrn")
