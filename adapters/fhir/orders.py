"""ServiceRequest / MedicationRequest, Appointment, BiologicallyDerivedProduct and Procedure ->
order commands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.fhir.products import first_product
from adapters.fhir.profile import SiteProfile
from adapters.fhir.resources import (
    Contents,
    Json,
    Located,
    has_code,
    identifiers_of,
    instant,
    party,
    patient_identity,
    reference_identifiers,
    refs_of,
)
from gateway.sdk import (
    Command,
    ExternalRef,
    MappingError,
    OrderStatus,
    Party,
    PatientIdentity,
    Product,
    UnsupportedMessage,
    validate_coi,
    validate_din,
)

ORDER_INTENTS = ("order", "original-order", "instance-order", "filler-order")
CANCELLED = {"revoked": "revoked by the site", "entered-in-error": "entered in error", "stopped": "stopped"}
SCHEDULED = ("booked", "arrived", "checked-in")


def lenient_instant(value: str | None) -> str | None:
    """authoredOn and the like: kept when it is a full instant, dropped when partial."""
    return value if value and "T" in value else None


class OrderMapping:
    """Maps the order-side resources of one message, for one site."""

    def __init__(
        self,
        contents: Contents,
        profile: SiteProfile,
        site: Party,
        known_orders: Mapping[ExternalRef, OrderStatus],
    ) -> None:
        self.contents = contents
        self.profile = profile
        self.site = site
        self.known = known_orders

    # -- the order itself ------------------------------------------------------------------
    def is_known(self, located: Located) -> bool:
        """The order's placer number names an order the gateway has (looked up for PUTs): a
        therapy order, whatever code (or none) a change of it carries."""
        return any(
            r in self.known for r in refs_of(identifiers_of(located.resource), self.profile, "placer_order")
        )

    def order(self, located: Located, product: Product | None) -> Command:
        """The command of a therapy order (`product`: what `product` found it names; None only
        for an order the gateway knows)."""
        resource, path = located.resource, located.path
        if resource.get("intent") not in ORDER_INTENTS:
            raise UnsupportedMessage(
                f"intent {resource.get('intent')!r} is not an order; send intent 'order'",
                location=f"{path}.intent",
            )
        placer = self.placer(located)
        patient_refs, identity = self.patient(resource.get("subject"), f"{path}.subject")
        cois = self.cois(identifiers_of(resource), f"{path}.identifier")
        refs = [placer, *patient_refs, *cois]
        status = resource.get("status")
        occurred = lenient_instant(resource.get("authoredOn"))
        base: dict[str, Any] = {"refs": refs, "patient": identity}
        if status in CANCELLED:
            return self._command("order.cancelled", base, reason=CANCELLED[str(status)], occurred_at=occurred)
        if status == "on-hold":
            return self._command("order.held", base, reason="put on hold by the site", occurred_at=occurred)
        if status != "active":
            raise UnsupportedMessage(
                f"status {status!r} is not taken: send active, on-hold, revoked or entered-in-error",
                location=f"{path}.status",
            )
        known = self.known.get(placer)
        if located.method == "PUT" and known is OrderStatus.on_hold:
            return self._command("order.resumed", base, reason="released by the site", occurred_at=occurred)
        practitioner = self.practitioner(resource.get("requester"))
        if located.method == "PUT" and known is not None:
            changes = {"product": product, "ordering_practitioner": practitioner}
            return self._command(
                "order.updated",
                base,
                changes={k: v for k, v in changes.items() if v is not None},
                occurred_at=occurred,
            )
        if product is None:
            raise MappingError("a new order needs a product code this site uses", location=f"{path}.code")
        details = {"product": product, "ordering_site": self.site, "ordering_practitioner": practitioner}
        return self._command("order.placed", base, order=details, occurred_at=occurred)

    @staticmethod
    def _command(event: str, base: dict[str, Any], **payload: Any) -> Command:
        return Command.model_validate(
            {**base, "event": event, "payload": {k: v for k, v in payload.items() if v is not None}}
        )

    def placer(self, located: Located) -> ExternalRef:
        found = refs_of(identifiers_of(located.resource), self.profile, "placer_order")
        if len(found) != 1:
            rule = self.profile.rule("placer_order")
            raise MappingError(
                f"{located.type} needs exactly one placer order number (system {rule.system})",
                location=f"{located.path}.identifier",
            )
        return found[0]

    def patient(self, reference: Json | None, path: str) -> tuple[list[ExternalRef], PatientIdentity | None]:
        """The patient's MRNs and COI, and demographics when the Patient is in the message."""
        identifiers = reference_identifiers(reference, self.contents)
        mrns = refs_of(identifiers, self.profile, "mrn")
        if not mrns:
            raise MappingError(
                f"the patient needs an MRN (system {self.profile.rule('mrn').system} or type MR)",
                location=path,
            )
        target = self.contents.resolve(reference)
        identity = patient_identity(target.resource) if target and target.type == "Patient" else None
        return [*mrns, *self.cois(identifiers, path)], identity

    def cois(self, identifiers: list[Json], path: str) -> list[ExternalRef]:
        out = []
        for ref in refs_of(identifiers, self.profile, "coi"):
            try:
                out.append(ExternalRef(namespace=ref.namespace, value=validate_coi(ref.value)))
            except ValueError as exc:
                raise MappingError(f"not a chain-of-identity identifier: {exc}", location=path) from None
        return out

    def product(self, located: Located) -> Product | None:
        """The therapy product the order names (its code, its Medication's, or the productCode of
        a BiologicallyDerivedProduct made for it), or None: not a therapy order."""
        resource = located.resource
        concepts: list[Json | None] = [resource.get("code")] if located.type == "ServiceRequest" else []
        if located.type == "MedicationRequest":
            concepts.append(resource.get("medicationCodeableConcept"))
            medication = self.contents.resolve(resource.get("medicationReference"))
            if medication is not None:
                concepts.append(medication.resource.get("code"))
        for bdp in self.contents.of_type("BiologicallyDerivedProduct"):
            if any(self.contents.resolve(r) is located for r in bdp.resource.get("request") or []):
                concepts.append(bdp.resource.get("productCode"))
        return first_product(concepts, self.profile)

    def practitioner(self, reference: Json | None) -> Party | None:
        target = self.contents.resolve(reference)
        if target is not None and target.type == "PractitionerRole":
            person = target.resource.get("practitioner")
            return party(self.contents.resolve(person), person) or party(target, reference)
        return party(target, reference)

    # -- what happens to the order ---------------------------------------------------------
    def order_refs(self, references: list[Json], path: str) -> list[ExternalRef]:
        """The placer order numbers a basedOn / request list names (in the message or logically)."""
        found: list[ExternalRef] = []
        for reference in references:
            found += refs_of(reference_identifiers(reference, self.contents), self.profile, "placer_order")
        if not found:
            orders = [
                o for o in self.contents.of_type("ServiceRequest", "MedicationRequest") if self.product(o)
            ]
            if len(orders) == 1:
                found = [self.placer(orders[0])]
        if not found:
            raise MappingError(
                "name the order: a reference to the ServiceRequest or its placer order number",
                location=path,
            )
        return found

    def appointment(self, located: Located) -> Command | None:
        """An apheresis or infusion appointment's command; None for any other appointment."""
        resource, path = located.resource, located.path
        concepts = [
            *(resource.get("serviceType") or []),
            *(resource.get("serviceCategory") or []),
            resource.get("appointmentType") or {},
        ]
        kinds = self.profile.appointments
        kind = (
            "collection"
            if has_code(concepts, kinds.collection)
            else "infusion"
            if has_code(concepts, kinds.infusion)
            else None
        )
        if kind is None:
            return None
        refs = self.order_refs(list(resource.get("basedOn") or []), f"{path}.basedOn")
        for i, participant in enumerate(resource.get("participant") or []):
            actor = participant.get("actor")
            target = self.contents.resolve(actor)
            if (target and target.type == "Patient") or str((actor or {}).get("type")) == "Patient":
                refs += self.patient(actor, f"{path}.participant[{i}].actor")[0]
        status = resource.get("status")
        if status == "cancelled" and kind == "collection":
            return self._command("collection.cancelled", {"refs": refs}, reason="appointment cancelled")
        if status not in SCHEDULED:
            raise UnsupportedMessage(
                f"an appointment with status {status!r} is not taken: send booked (or cancelled for apheresis)",
                location=f"{path}.status",
            )
        start = instant(resource.get("start"), f"{path}.start")
        if start is None:
            raise MappingError("a booked appointment needs its start", location=f"{path}.start")
        if kind == "collection":
            return self._command("collection.scheduled", {"refs": refs}, scheduled_start=start)
        return self._command("infusion.scheduled", {"refs": refs}, planned_at=start)

    def collected(self, located: Located) -> Command | None:
        """A BiologicallyDerivedProduct that was collected: collection.completed, binding its DIN."""
        resource, path = located.resource, located.path
        collection = resource.get("collection") or {}
        when = collection.get("collectedDateTime") or (collection.get("collectedPeriod") or {}).get("start")
        if not when:
            return None  # a product description only (its productCode may name the product)
        collected_at = instant(when, f"{path}.collection.collected")
        dins = []
        for ref in refs_of(identifiers_of(resource), self.profile, "din"):
            try:
                dins.append(ExternalRef(namespace=ref.namespace, value=validate_din(ref.value)))
            except ValueError as exc:
                raise MappingError(f"not an ISBT 128 DIN: {exc}", location=f"{path}.identifier") from None
        refs = [*self.order_refs(list(resource.get("request") or []), f"{path}.request"), *dins]
        return self._command(
            "collection.completed",
            {"refs": refs, "binds": dins},
            collected_at=collected_at,
            din=dins[0].value if dins else None,
        )

    def infused(self, located: Located) -> Command | None:
        """A completed infusion Procedure (its code one of the profile's infusion codes, based on
        the order): infusion.completed at its performed time. None: not an infusion, or not yet
        (or never) completed, which the gateway does not act on."""
        resource, path = located.resource, located.path
        if resource.get("status") != "completed" or not self.is_infusion(located):
            return None
        performed = resource.get("performedDateTime") or (resource.get("performedPeriod") or {}).get("start")
        infused_at = instant(performed, f"{path}.performed")
        if infused_at is None:
            raise MappingError("a completed infusion needs its performed time", location=f"{path}.performed")
        refs = self.order_refs(list(resource.get("basedOn") or []), f"{path}.basedOn")
        if resource.get("subject"):
            refs += self.patient(resource["subject"], f"{path}.subject")[0]
        return self._command("infusion.completed", {"refs": refs}, infused_at=infused_at)

    def is_infusion(self, located: Located) -> bool:
        return has_code([located.resource.get("code") or {}], self.profile.appointments.infusion)
