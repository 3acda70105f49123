"""Reading validated FHIR JSON: identifiers, codings, references within a Bundle, names and times.

The R4B models have checked the shapes before anything here runs, so these read plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from adapters.fhir.profile import Code, IdentifierKind, SiteProfile
from gateway.sdk import ExternalRef, MappingError, Party, PatientIdentity

Json = dict[str, Any]
SEX = {"male": "M", "female": "F", "other": "O", "unknown": "U"}


@dataclass(frozen=True)
class Located:
    """A resource and its FHIRPath from the top of the message."""

    resource: Json
    path: str
    method: str = "POST"  # the transaction entry's request.method, or the HTTP method
    if_none_exist: str | None = None

    @property
    def type(self) -> str:
        return str(self.resource.get("resourceType"))


@dataclass
class Contents:
    """The resources of one message, with an index to resolve references between them."""

    entries: list[Located] = field(default_factory=list)
    by_reference: dict[str, Located] = field(default_factory=dict)

    def add(self, located: Located, full_url: str | None = None) -> None:
        self.entries.append(located)
        rid = located.resource.get("id")
        keys = [full_url] if full_url else []
        if rid:
            keys.append(f"{located.type}/{rid}")
        for key in keys:
            self.by_reference[key] = located
        if full_url and "/" in full_url and not full_url.startswith("urn:"):
            tail = "/".join(full_url.rstrip("/").split("/")[-2:])
            self.by_reference.setdefault(tail, located)

    def of_type(self, *types: str) -> list[Located]:
        return [e for e in self.entries if e.type in types]

    def resolve(self, reference: Json | None) -> Located | None:
        if not reference or "reference" not in reference:
            return None
        return self.by_reference.get(str(reference["reference"]))


def codings(concept: Json | None) -> list[Json]:
    return list((concept or {}).get("coding") or [])


def has_code(concepts: list[Json], wanted: tuple[Code, ...]) -> bool:
    keys = {(c.system, c.code) for c in wanted}
    return any((c.get("system"), c.get("code")) in keys for cc in concepts for c in codings(cc))


def identifier_kind(identifier: Json, profile: SiteProfile) -> IdentifierKind | None:
    """What an identifier means to this site: by its system, else by its v2-0203 type."""
    system = identifier.get("system")
    if system:
        kind = profile.kind_of_system(str(system))
        if kind:
            return kind
    typed: IdentifierKind
    for typed in ("mrn", "placer_order"):
        rule = profile.rule(typed)
        if rule.types and has_code([identifier.get("type") or {}], rule.types):
            return typed
    return None


def refs_of(identifiers: list[Json], profile: SiteProfile, *kinds: IdentifierKind) -> list[ExternalRef]:
    out: list[ExternalRef] = []
    for identifier in identifiers:
        kind = identifier_kind(identifier, profile)
        value = identifier.get("value")
        if kind is not None and kind in kinds and value:
            ref = ExternalRef(namespace=profile.rule(kind).namespace, value=str(value).strip())
            if ref not in out:
                out.append(ref)
    return out


def identifiers_of(resource: Json) -> list[Json]:
    return list(resource.get("identifier") or [])


def reference_identifiers(reference: Json | None, contents: Contents) -> list[Json]:
    """The identifiers a reference names: the target's when it is in the message, else its own."""
    target = contents.resolve(reference)
    if target is not None:
        return identifiers_of(target.resource)
    logical = (reference or {}).get("identifier")
    return [logical] if logical else []


def patient_identity(patient: Json) -> PatientIdentity:
    names = list(patient.get("name") or [])
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else {})
    given = list(name.get("given") or [])
    birth = patient.get("birthDate")
    return PatientIdentity(
        family_name=name.get("family"),
        given_name=given[0] if given else None,
        birth_date=date.fromisoformat(birth) if birth and len(birth) == 10 else None,
        sex=SEX.get(str(patient.get("gender"))),
    )


def party(located: Located | None, reference: Json | None) -> Party | None:
    """A practitioner or organisation by its first identifier, else by its reference."""
    if located is not None:
        resource = located.resource
        ids = [i["value"] for i in identifiers_of(resource) if i.get("value")]
        key = ids[0] if ids else f"{located.type}/{resource.get('id', '?')}"
        return Party(id=str(key), name=display_name(resource))
    if reference:
        logical = reference.get("identifier") or {}
        key = logical.get("value") or reference.get("reference")
        if key:
            return Party(id=str(key), name=reference.get("display"))
    return None


def display_name(resource: Json) -> str | None:
    if isinstance(resource.get("name"), str):
        return str(resource["name"])
    names = list(resource.get("name") or [])
    if not names:
        return None
    name = names[0]
    if name.get("text"):
        return str(name["text"])
    parts = [*(name.get("given") or []), name.get("family") or ""]
    return " ".join(p for p in parts if p) or None


def instant(value: str | None, path: str) -> datetime | None:
    """A FHIR dateTime with a time zone; a partial date is no instant to schedule on."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise MappingError(f"{path} must be a full date and time with a time zone", location=path)
    return parsed
